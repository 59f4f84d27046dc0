"""Bulk submission: every row of a file becomes one result line, whatever happens to the others."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from htap_sync.common.errors import RequestInvalid
from htap_sync.common.lanes import Lane
from htap_sync.common.models import TicketStatus, Until
from htap_sync.producer.api import Producer
from htap_sync.producer.bulk_file import Row


@dataclass
class BulkReport:
    """Per-line results, in input order, and the counts for the summary."""

    lines: list[dict[str, Any]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    tickets: dict[int, str] = field(default_factory=dict)  # line -> ticket

    @property
    def all_accepted(self) -> bool:
        """True when no row was invalid or in conflict."""
        return self.counts["invalid"] == 0 and self.counts["conflict"] == 0

    def apply_statuses(self, statuses: dict[str, TicketStatus], until: Until = "created") -> None:
        """Replace accepted lines' statuses by the ones a wait returned; count final states.

        Counts ``succeeded``/``failed`` (tickets), ``sync_<state>`` (their tasks), and
        ``unfinished``: the lines whose wait ``until`` a milestone did not end.
        """
        for entry in self.lines:
            ticket = self.tickets.get(entry["line"])
            if ticket is None:
                continue
            status = statuses[ticket]
            entry.update(status.to_json())
            # Only final states: "queued" is already the count of new rows (an outcome).
            if status.state.terminal:
                self.counts[status.state.value] += 1
            if status.sync is not None:
                self.counts[f"sync_{status.sync.state.value}"] += 1
            self.counts["unfinished"] += not status.done(until)

    def all_succeeded(self, until: Until = "created") -> bool:
        """True when every row was accepted and every accepted ticket succeeded (and, until
        ``synced``, every task was seen syncing)."""
        reached = "succeeded" if until == "created" else "sync_syncing"
        return self.all_accepted and self.counts[reached] == len(self.tickets)


def submit_rows(
    producer: Producer,
    rows: Iterable[Row],
    *,
    on_row: Callable[[BulkReport], None] | None = None,
    report: BulkReport | None = None,
    lane: Lane | None = None,
    tenant: str | None = None,
) -> BulkReport:
    """Validate and enqueue each row in pipelined batches; bad rows are reported, never
    queued, never fatal.

    Args:
        producer: queues the rows.
        rows: the file's rows, in order.
        on_row: called after each row's result is added.
        report: filled in place when given, so that a caller still has the lines of the
            batches already queued when Redis fails part-way (the error propagates).
        lane, tenant: for rows that name none (default: bulk; each row's project).
    """
    report = report if report is not None else BulkReport()
    lines: list[int] = []

    def requests() -> Iterator[Mapping[str, Any] | RequestInvalid]:
        for row in rows:
            lines.append(row.line)
            yield RequestInvalid(row.errors) if row.errors or row.data is None else row.data

    for result in producer.enqueue_many(requests(), lane=lane, tenant=tenant):
        entry: dict[str, Any] = {"line": lines[result.index]}
        report.counts["rows"] += 1
        if result.status == "invalid":
            entry.update(state="invalid", errors=result.errors)
            report.counts["invalid"] += 1
        elif result.status == "conflict":
            entry.update(state="conflict", ticket=result.ticket, errors=result.errors)
            report.counts["conflict"] += 1
        else:
            assert result.ticket is not None
            report.tickets[entry["line"]] = result.ticket
            report.counts["accepted"] += 1
            report.counts[result.status] += 1
            entry.update(outcome=result.status, ticket=result.ticket)
        report.lines.append(entry)
        if on_row is not None:
            on_row(report)
    return report


def fill_statuses(producer: Producer, report: BulkReport) -> None:
    """Without waiting: the current status of every accepted row."""
    found = producer.statuses(report.tickets.values())
    for entry in report.lines:
        ticket = report.tickets.get(entry["line"])
        status = found.get(ticket) if ticket else None
        if status is not None:
            entry.update(status.to_json())
