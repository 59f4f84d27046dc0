"""Edges of the callers' tools: deadlines that must be finite, honest bulk counts, odd files."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from htap_sync.cli.bulk import bulk, summary
from htap_sync.cli.tickets import status, wait
from htap_sync.common.models import TicketState, TicketStatus, parse_request
from htap_sync.producer.bulk import BulkReport
from htap_sync.producer.bulk_file import BulkFileError, check_file
from tests.conftest import VALID

TICKET = "tk_" + "0" * 32


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
@pytest.mark.parametrize("command", ["wait", "status", "bulk"])
def test_a_timeout_must_be_a_finite_number_of_seconds(
    tmp_path: Path, command: str, value: str
) -> None:
    """--timeout-s nan (which would poll forever), inf or a negative number: usage error 2."""
    source = tmp_path / "rows.csv"
    source.write_text(",".join(VALID) + "\n" + ",".join(VALID.values()) + "\n")
    chosen: dict[str, tuple[click.Command, str]] = {
        "wait": (wait, TICKET),
        "status": (status, TICKET),
        "bulk": (bulk, str(source)),
    }
    cli, argument = chosen[command]
    ran = CliRunner().invoke(cli, [argument, "--timeout-s", value])
    assert ran.exit_code == 2, ran.output
    assert "--timeout-s" in ran.output
    if value != "-1":
        assert "is not a finite number of seconds" in ran.output


def _status(state: TicketState) -> TicketStatus:
    now = datetime.now(UTC)
    request = parse_request(dict(VALID))
    return TicketStatus(ticket=TICKET, state=state, request=request, created_at=now, updated_at=now)


def test_a_timed_out_bulk_wait_keeps_the_count_of_new_rows() -> None:
    """Tickets still queued after the wait do not add to "new" (an outcome, not a state)."""
    report = BulkReport()
    report.lines.append({"line": 2, "outcome": "queued", "ticket": TICKET})
    report.tickets[2] = TICKET
    report.counts.update(rows=1, accepted=1, queued=1)
    report.apply_statuses({TICKET: _status(TicketState.QUEUED)})
    text = summary(report, waited=True)
    assert "(new 1," in text and "unfinished 1" in text, text
    assert report.lines[0]["state"] == "queued"


def test_utf16_without_a_byte_order_mark_is_named(tmp_path: Path) -> None:
    """A UTF-16 file without BOM (NUL bytes between ASCII letters) is refused, saying UTF-16."""
    path = tmp_path / "nobom.csv"
    path.write_bytes((",".join(VALID) + "\r\n" + ",".join(VALID.values())).encode("utf-16-le"))
    with pytest.raises(BulkFileError, match="UTF-16/UTF-32 text without a byte order mark"):
        check_file(path)
