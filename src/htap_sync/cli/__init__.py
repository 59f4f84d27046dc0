"""The ``htap-sync`` command line, the product's composition root.

Each module holds one group of commands: ``tickets`` (enqueue, status, wait, failed, retry,
inspect), ``bulk``, ``operations`` (pause, resume, delete, modify, undo), ``report``,
``services`` (worker, api, simulator) and ``demo``. Exit codes are listed in
:mod:`htap_sync.cli.base`.
"""

from __future__ import annotations

import click

from htap_sync.cli import bulk, demo, flower, operations, report, services, tickets


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="taurus-htap-sync")
def main() -> None:
    """Create TaurusDB HTAP -> StarRocks data-sync tasks through a Redis queue.

    Settings come from HTAP_SYNC_* environment variables or a .env file (see the README).
    """


for _command in (
    tickets.enqueue,
    tickets.status,
    tickets.wait,
    tickets.failed,
    tickets.retry,
    tickets.inspect,
    bulk.bulk,
    operations.pause,
    operations.resume,
    operations.delete,
    operations.modify,
    operations.undo,
    report.report,
    services.worker,
    services.api,
    services.simulator,
    demo.demo,
    flower.flower,
):
    main.add_command(_command)

__all__ = ["main"]
