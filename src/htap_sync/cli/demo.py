"""``htap-sync demo``: the whole pipeline on embedded defaults, from a sample file to a table."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from htap_sync.cli.base import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    err,
    fail,
    out,
    settings_or_exit,
)
from htap_sync.cli.bulk import run_bulk, summary
from htap_sync.devstack import NoRedisServer, Stack
from htap_sync.producer.bulk import BulkReport

# The simulator answers in 20 ms; each task waits 1 s, loads in full for 1 s, then syncs.
DEMO_SIMULATOR = [
    "--latency-ms",
    "20",
    "--stage-wait-s",
    "1",
    "--stage-full-s",
    "1",
    "--job-appear-delay-s",
    "0.5",
]
# Workers follow each created task from half a second on, a round a second.
DEMO_FOLLOW = {"HTAP_SYNC_FOLLOW_FIRST_S": "0.5", "HTAP_SYNC_FOLLOW_INTERVAL_S": "1"}


def results_table(lines: list[dict[str, Any]]) -> Table:
    """One row per input row: its line, the task's name, where it stands, its job id or error.

    "state" is the ticket's state, or once its task was created, the task's own (``syncing``
    with its stage, ``failed`` with the reason).
    """
    table = Table(title="results", show_lines=False)
    table.add_column("#", no_wrap=True, justify="right", min_width=3)
    for column in ("task_name", "state", "job_id / error"):
        table.add_column(column, no_wrap=True)
    for entry in lines:
        request = entry.get("request") or {}
        error = entry.get("error") or {}
        sync = entry.get("sync") or {}
        detail = (
            error.get("error_msg")
            or sync.get("fail_reason")
            or entry.get("job_id")
            or ", ".join(e["message"] for e in entry.get("errors", []))
        )
        state = sync.get("state") or entry["state"]
        if sync.get("stage") and state == "syncing":
            state = f"syncing ({sync['stage']})"
        table.add_row(str(entry["line"]), request.get("task_name", "-"), state, detail)
    return table


@click.command()
@click.option(
    "--file",
    "file_",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Requests to send (default: the shipped sample of 50).",
)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 8))
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the JSON Lines results here.",
)
def demo(file_: Path | None, workers: int, output: Path | None) -> None:
    """Run the whole pipeline on embedded defaults: Redis, simulator, worker, a sample file;
    every created task followed until it syncs."""
    sample = file_ or Path(str(resources.files("htap_sync.producer") / "samples" / "demo.csv"))
    err.print(f"[bold]htap-sync demo[/bold]: {sample.name} through a local stack", highlight=False)
    try:
        report, lines = _run(sample, workers)
    except NoRedisServer as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    if output:
        output.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    # Off a terminal (80 columns by default), room for whole job ids rather than "…".
    wide = out if out.is_terminal else Console(highlight=False, width=200)
    wide.print(results_table(report.lines))
    err.print(summary(report, waited=True), highlight=False, soft_wrap=True)
    sys.exit(EXIT_OK if report.all_succeeded("synced") else EXIT_FAILED)


def _run(sample: Path, workers: int) -> tuple[BulkReport, list[str]]:
    """Send ``sample`` through a local stack; its report and result lines."""
    with Stack(workers=workers, simulator_args=DEMO_SIMULATOR, settings_env=DEMO_FOLLOW) as stack:
        assert stack.redis is not None
        err.print(
            f"  redis {stack.redis.url}   simulator {stack.simulator_url}   workers {workers}",
            highlight=False,
        )
        settings = settings_or_exit(
            redis_url=stack.redis.url, endpoint=stack.simulator_url, auth_token=stack.token
        )
        lines: list[str] = []
        report = run_bulk(
            settings,
            sample,
            fmt=None,
            wait_s=300.0,
            show_progress=True,
            write=lines.append,
            until="synced",
        )
    return report, lines
