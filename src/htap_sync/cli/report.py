"""``htap-sync report FILE``: where a migration stands, task by task, and what failed and why.

FILE is a bulk input file (CSV or JSON Lines of requests: tickets are derived from each row's
identity) or the JSON Lines results ``htap-sync bulk`` wrote (each line names its ticket).
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from htap_sync.cli.base import (
    EXIT_FAILED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_TIMEOUT,
    emit_json,
    err,
    producer_or_exit,
    settings_or_exit,
)
from htap_sync.common.errors import RequestInvalid
from htap_sync.common.models import TicketState, TicketStatus
from htap_sync.common.tickets.ids import ticket_id
from htap_sync.producer.api import Producer
from htap_sync.producer.bulk_file import Format, read_rows

# The report's buckets, in the order they are printed.
KINDS = ("syncing", "following", "creating", "failed", "unknown", "not_found", "invalid")


def tickets_of(producer: Producer, path: Path, fmt: Format | None) -> tuple[list[str], int]:
    """The tickets a file stands for (in file order, once each), and its unreadable rows."""
    tickets: dict[str, None] = {}
    invalid = 0
    for row in read_rows(path, fmt):
        data = row.data
        if row.errors or data is None:
            invalid += 1
        elif isinstance(data.get("ticket"), str):
            tickets[data["ticket"]] = None
        elif "request" in data and isinstance(data["request"], dict):
            continue  # a results line of a row that was never accepted: nothing to report
        else:
            try:
                request = producer.validate(data)
            except RequestInvalid:
                invalid += 1
                continue
            tickets[ticket_id(request.project_id, request.instance_id, request.task_name)] = None
    return list(tickets), invalid


def classify(status: TicketStatus | None) -> str:
    """The report bucket of one ticket."""
    if status is None:
        return "not_found"
    if status.state is TicketState.FAILED:
        return "failed"
    if status.state is not TicketState.SUCCEEDED:
        return "creating"
    return status.sync.state.value if status.sync else "following"


def entry(ticket: str, status: TicketStatus | None, kind: str) -> dict[str, Any]:
    """One ticket's line of the report: identity, stage, and the reason when it went wrong."""
    row: dict[str, Any] = {"ticket": ticket, "kind": kind}
    if status is None:
        return row
    row["task_ref"] = status.task_ref
    row.update(lane=status.request.lane, tenant=status.request.tenant or status.project_id)
    if status.sync is not None:
        row.update(stage=status.sync.stage, job_status=status.sync.job_status)
    if kind == "failed" and status.error is not None:
        row["reason"] = f"not created: {status.error.error_code or ''} {status.error.error_msg}"
    elif status.sync is not None and status.sync.fail_reason:
        row["reason"] = status.sync.fail_reason
    return row


def build_report(
    statuses: dict[str, TicketStatus | None], invalid: int
) -> tuple[Counter[str], list[dict[str, Any]]]:
    """Counts per bucket, and a line for every ticket that did not end syncing."""
    counts: Counter[str] = Counter(dict.fromkeys(KINDS, 0))
    counts["invalid"] = invalid
    lines = []
    for ticket, status in statuses.items():
        kind = classify(status)
        counts[kind] += 1
        if kind != "syncing":
            lines.append(entry(ticket, status, kind))
    return counts, lines


def exit_code(counts: Counter[str]) -> int:
    """1 if anything failed (or is unknown, or unreadable); 5 while some are on their way."""
    if counts["failed"] or counts["unknown"] or counts["invalid"]:
        return EXIT_FAILED
    if counts["following"] or counts["creating"]:
        return EXIT_TIMEOUT
    return EXIT_NOT_FOUND if counts["not_found"] else EXIT_OK


def _print(counts: Counter[str], lines: Iterable[dict[str, Any]]) -> None:
    click.echo(", ".join(f"{kind.replace('_', ' ')} {counts[kind]}" for kind in KINDS))
    for line in lines:
        if line["kind"] in {"failed", "unknown", "not_found"}:
            ref = line.get("task_ref", "-")
            click.echo(f"{line['kind']:<9}  {line['ticket']}  {ref}  {line.get('reason', '')}")


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), help="Default: by suffix.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object: counts and lines.")
def report(file: Path, fmt: Format | None, as_json: bool) -> None:
    """Report a migration: how many tasks are syncing, still on their way, failed (and why).

    Exit 0 when every task is syncing, 1 when any failed (to be created or to sync) or is
    unknown, 5 while some are still being created or followed, 4 when tickets are unknown.
    """
    settings = settings_or_exit()
    with producer_or_exit(settings) as producer:
        tickets, invalid = tickets_of(producer, file, fmt)
        statuses = producer.statuses(tickets)
    counts, lines = build_report(statuses, invalid)
    lanes = Counter(
        f"{s.request.lane or 'interactive'} {s.request.tenant or s.project_id}"
        for s in statuses.values()
        if s is not None
    )
    if as_json:
        emit_json({"counts": dict(counts), "lanes": dict(lanes), "tickets": lines})
    else:
        _print(counts, lines)
        click.echo("by lane and tenant: " + ", ".join(f"{k} {n}" for k, n in sorted(lanes.items())))
        err.print(f"{len(tickets)} tickets from {file.name}", highlight=False)
    sys.exit(exit_code(counts))
