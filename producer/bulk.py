"""Bulk submission: every row of a file becomes one result line, whatever happens to the others."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from common.errors import RequestInvalid, TicketConflict
from common.models import TicketStatus
from producer.api import Producer
from producer.bulk_file import Row


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

    def apply_statuses(self, statuses: dict[str, TicketStatus]) -> None:
        """Replace accepted lines' statuses by the ones a wait returned; count final states."""
        for entry in self.lines:
            ticket = self.tickets.get(entry["line"])
            if ticket is None:
                continue
            status = statuses[ticket]
            entry.update(status.to_json())
            self.counts[status.state.value] += 1

    def all_succeeded(self) -> bool:
        """True when every row was accepted and every accepted ticket succeeded."""
        return self.all_accepted and self.counts["succeeded"] == len(self.tickets)


def submit_rows(
    producer: Producer,
    rows: Iterable[Row],
    *,
    on_row: Callable[[BulkReport], None] | None = None,
) -> BulkReport:
    """Validate and enqueue each row; bad rows are reported, never queued, never fatal."""
    report = BulkReport()
    for row in rows:
        report.counts["rows"] += 1
        entry: dict[str, Any] = {"line": row.line}
        if row.errors or row.data is None:
            entry.update(state="invalid", errors=row.errors)
            report.counts["invalid"] += 1
        else:
            try:
                receipt = producer.enqueue(row.data)
            except RequestInvalid as exc:
                entry.update(state="invalid", errors=exc.errors)
                report.counts["invalid"] += 1
            except TicketConflict as exc:
                rule = f"another request holds this task name ({exc.state})"
                entry.update(
                    state="conflict",
                    ticket=exc.ticket,
                    errors=[{"field": "task_name", "rule": rule, "message": f"task_name: {rule}"}],
                )
                report.counts["conflict"] += 1
            else:
                report.tickets[row.line] = receipt.ticket
                report.counts["accepted"] += 1
                report.counts[receipt.outcome.value] += 1
                entry.update(outcome=receipt.outcome.value, ticket=receipt.ticket)
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
