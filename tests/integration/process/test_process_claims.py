"""process_ticket on a real Redis: success, stale and missing messages, leases,
untrusted messages and late writers."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import pytest

from htap_sync.common.models import ErrorPayload, TicketState
from htap_sync.common.tickets.claims import Claim
from htap_sync.common.tickets.ids import ticket_id
from htap_sync.worker.delivery.ticket import Outcome
from tests.conftest import request_data
from tests.integration.process.worker_rig import Message, Rig, assert_result_ttl
from tests.scripted_api import FakeClock, created

# -- success, stale and missing messages, leases -------------------------------------------------


def test_success_records_the_job_and_a_redelivery_sends_nothing(rig: Rig) -> None:
    """One POST succeeds the ticket with its job id and TTL; the same message again is skipped."""
    msg = rig.submit()
    rig.api.answer_creates(created("job-1"))

    assert rig.deliver(msg) == Outcome("finished", reason="created")
    status = rig.status(msg)
    assert status.state is TicketState.SUCCEEDED
    assert (status.job_id, status.attempts, status.reconciled, status.error) == (
        "job-1",
        1,
        False,
        None,
    )
    assert not rig.in_doubt(msg)
    assert_result_ttl(rig, msg)
    assert rig.api.methods == ["POST"]

    assert rig.deliver(msg) == Outcome("skipped", reason="done")
    assert rig.api.methods == ["POST"]
    assert rig.status(msg).attempts == 1


def test_a_message_of_another_run_is_skipped_and_sends_nothing(rig: Rig) -> None:
    """A message whose run is not the ticket's current run does nothing at all."""
    msg = rig.submit()
    assert rig.deliver(replace(msg, run=uuid.uuid4().hex)) == Outcome("skipped", reason="stale")
    assert rig.api.methods == []
    status = rig.status(msg)
    assert (status.state, status.attempts) == (TicketState.QUEUED, 0)


def test_a_message_for_a_missing_ticket_is_skipped_and_creates_no_key(rig: Rig) -> None:
    """A message naming a ticket that does not exist sends nothing and writes nothing."""
    payload = request_data(task_name="never_submitted")
    ticket = ticket_id(payload["project_id"], payload["instance_id"], payload["task_name"])
    msg = Message(ticket, uuid.uuid4().hex, payload)
    assert rig.deliver(msg) == Outcome("skipped", reason="missing")
    assert rig.api.methods == []
    assert rig.redis.exists(rig.store.key(ticket)) == 0


def test_a_live_lease_turns_deliveries_away_until_it_expires(rig: Rig, clock: FakeClock) -> None:
    """While a holder's lease runs, begin() is busy; after it expires the next delivery takes it."""
    rig.use_clock(clock)
    msg = rig.submit()
    lease_s = rig.settings.lease_s
    assert isinstance(rig.store.begin(msg.ticket, msg.run, lease_s=lease_s), Claim)

    clock.advance(lease_s - 0.5)
    assert rig.store.begin(msg.ticket, msg.run, lease_s=lease_s) == "busy"
    assert rig.deliver(msg) == Outcome("skipped", reason="busy")
    assert rig.api.methods == []

    clock.advance(1.0)
    rig.api.answer_creates(created("job-3"))
    assert rig.deliver(msg) == Outcome("finished", reason="created")
    # The holder never started an attempt, so nothing was in doubt: no list call.
    assert rig.api.methods == ["POST"]
    assert (rig.status(msg).state, rig.status(msg).attempts) == (TicketState.SUCCEEDED, 1)


# -- untrusted messages, late writers ------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "reason", "error_msg"),
    [
        pytest.param(
            request_data(task_name="x"),
            "invalid message",
            "task_name: 3 to 128 characters of A-Z, a-z, 0-9 and _",
            id="rule-broken",
        ),
        pytest.param(
            {**request_data(), "job_id": "forged"},
            "invalid message",
            "job_id: unknown field",
            id="unknown-field",
        ),
        pytest.param(
            "not an object", "invalid message", "request: must be an object", id="not-an-object"
        ),
        pytest.param(
            request_data(task_name="someone_elses_task"),
            "ticket mismatch",
            "message names another ticket",
            id="another-ticket",
        ),
    ],
)
def test_a_tampered_message_fails_the_ticket_as_invalid_and_sends_nothing(
    rig: Rig, payload: Any, reason: str, error_msg: str
) -> None:
    """A message breaking the rules or naming another ticket fails it with HTAP_SYNC.INVALID."""
    msg = rig.submit()
    other = rig.submit(task_name="someone_elses_task")

    assert rig.deliver(replace(msg, payload=payload)) == Outcome("finished", reason=reason)
    status = rig.status(msg)
    assert status.state is TicketState.FAILED
    assert status.error == ErrorPayload(error_code="HTAP_SYNC.INVALID", error_msg=error_msg)
    assert status.attempts == 0
    assert rig.api.methods == []
    assert rig.status(other).state is TicketState.QUEUED


@pytest.mark.parametrize("finish", ["succeed", "fail"])
def test_late_writers_cannot_undo_a_result(rig: Rig, finish: str) -> None:
    """After a ticket finished, every write of the same run is refused and the result stands."""
    msg = rig.submit()
    lease_s = rig.settings.lease_s
    claim = rig.store.begin(msg.ticket, msg.run, lease_s=lease_s)
    assert isinstance(claim, Claim)
    assert rig.store.start_attempt(claim, lease_s=lease_s)
    error = ErrorPayload(http_status=400, error_code="DBS.280001", error_msg="bad")
    if finish == "succeed":
        assert rig.store.succeed(claim, "job-12", reconciled=False)
    else:
        assert rig.store.fail(claim, error, in_doubt=False)
    before = rig.status(msg)

    late = ErrorPayload(error_msg="late writer")
    for writer in (claim, Claim(msg.ticket, msg.run)):  # the holder, and anyone
        assert rig.store.fail(writer, late) is False
        assert rig.store.fail(writer, late, in_doubt=True) is False
        assert rig.store.retrying(writer, late, in_doubt=True, due_at=0.0) is False
        assert rig.store.succeed(writer, "job-late", reconciled=True) is False
        assert rig.store.start_attempt(writer, lease_s=lease_s) is False
        assert rig.store.renew(writer, lease_s=lease_s) is False
        assert rig.store.defer(msg.ticket, msg.run, due_at=0.0) is False

    after = rig.status(msg)
    assert after == before
    assert after.state is (TicketState.SUCCEEDED if finish == "succeed" else TicketState.FAILED)
    assert not rig.in_doubt(msg)
    assert rig.store.begin(msg.ticket, msg.run, lease_s=lease_s) == "done"


def test_a_success_keeps_the_api_request_id(rig: Rig) -> None:
    """The create call's X-Request-Id is kept in the history of a success, as for an error."""
    msg = rig.submit()
    rig.api.answer_creates(created("job-rid"))
    assert rig.deliver(msg) == Outcome("finished", reason="created")
    (call,) = rig.status(msg).history
    assert (call.outcome, call.request_id) == ("created", "req-job-rid")
