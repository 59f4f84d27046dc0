"""The verdicts of the lifecycle commands: exit codes from receipts and statuses, and what an
undo reports for each task."""

from __future__ import annotations

from datetime import UTC, datetime

from htap_sync.cli.operations import NOT_OURS, _waited_exit, exit_code, undo_result
from htap_sync.common.models import ErrorPayload, TicketState, TicketStatus, parse_request
from htap_sync.producer.operations import OperationReceipt
from tests.conftest import request_data

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def status(state: TicketState, *, reconciled: bool = False, code: str = "") -> TicketStatus:
    error = ErrorPayload(error_code=code, error_msg="x") if code else None
    return TicketStatus(
        ticket="tk_" + "0" * 32,
        state=state,
        reconciled=reconciled,
        error=error,
        request=parse_request(request_data()),
        created_at=NOW,
        updated_at=NOW,
    )


def test_undo_results() -> None:
    """Removed when a DELETE was sent, not_there when found gone, not_ours for a task of
    another database pair, failed otherwise, pending while on its way."""
    assert undo_result(status(TicketState.SUCCEEDED)) == "removed"
    assert undo_result(status(TicketState.SUCCEEDED, reconciled=True)) == "not_there"
    assert undo_result(status(TicketState.FAILED, code=NOT_OURS)) == "not_ours"
    assert undo_result(status(TicketState.FAILED, code="DBS.200047")) == "failed"
    assert undo_result(status(TicketState.RETRYING)) == "pending"


def test_exit_codes() -> None:
    """2 invalid, 3 conflict, 4 not found, 1 a failed ticket, 5 a wait that timed out, else 0."""
    ok = OperationReceipt("t", "queued", "tk_" + "0" * 32)
    done = {"tk_" + "0" * 32: status(TicketState.SUCCEEDED)}
    assert exit_code([ok], done) == 0
    assert exit_code([ok, OperationReceipt("t", "invalid")], done) == 2
    assert exit_code([ok, OperationReceipt("t", "conflict")], done) == 3
    assert exit_code([ok, OperationReceipt("t", "not_found")], done) == 4
    assert exit_code([ok], {"t": status(TicketState.FAILED, code="X")}) == 1
    running = {"t": status(TicketState.RUNNING)}
    assert _waited_exit(exit_code([ok], running), running, True) == 5
    assert _waited_exit(exit_code([ok], running), running, False) == 0


def test_an_operation_ticket_is_done_at_its_end_whatever_the_milestone() -> None:
    """Waiting until synced on an operation's ticket ends when the ticket ends (it starts no
    following), where a creation's waits for its task."""
    from htap_sync.common.operations import parse_operation

    base = {k: request_data()[k] for k in ("project_id", "instance_id", "task_name")}
    creation = status(TicketState.SUCCEEDED)
    operation = creation.model_copy(
        update={"request": parse_operation({**base, "operation": "pause"})}
    )
    assert not creation.done("synced") and operation.done("synced")
