"""process_ticket on a real Redis: ambiguous outcomes are reconciled before posting again."""

from __future__ import annotations

import httpx
import pytest

from htap_sync.common.models import ErrorPayload, TicketState
from htap_sync.common.tickets.claims import Claim
from htap_sync.simulator import SimulatorServer
from htap_sync.worker.api.client import TaurusClient
from htap_sync.worker.delivery.ticket import Outcome
from tests.integration.harness import TOKEN
from tests.integration.process.worker_rig import (
    Rig,
    assert_result_ttl,
    fail_once_with_503,
    first_jitter_s,
)
from tests.scripted_api import FakeClock, created, refused


def test_a_5xx_leaves_the_ticket_retrying_in_doubt_with_the_error(rig: Rig) -> None:
    """A 5xx on create is a retry with full jitter; the ticket keeps the payload and its doubt."""
    msg = rig.submit()
    rig.api.answer_creates(
        refused(503, "DBS.108000", "Internal server error.", request_id="req-503")
    )

    outcome = rig.deliver(msg)
    assert outcome == Outcome("retry", delay_s=first_jitter_s(rig.settings), reason="ServerError")
    status = rig.status(msg)
    assert status.state is TicketState.RETRYING
    assert status.error == ErrorPayload(
        http_status=503,
        error_code="DBS.108000",
        error_msg="Internal server error.",
        request_id="req-503",
    )
    assert (status.attempts, status.job_id) == (1, None)
    assert rig.in_doubt(msg)
    assert rig.ttl_s(msg) == -1  # in flight: never expires
    assert rig.api.methods == ["POST"]


def test_after_a_5xx_a_listed_task_is_reconciled_without_a_second_post(rig: Rig) -> None:
    """When the list call shows the task with the same databases, the ticket succeeds unsent."""
    msg = fail_once_with_503(rig)
    rig.api.show(msg.payload)

    assert rig.deliver(msg) == Outcome("finished", reason="reconciled")
    status = rig.status(msg)
    assert status.state is TicketState.SUCCEEDED
    assert (status.job_id, status.reconciled, status.attempts, status.error) == (
        None,
        True,
        1,
        None,
    )
    assert not rig.in_doubt(msg)
    assert_result_ttl(rig, msg)
    assert rig.api.methods == ["POST", "GET"]


def test_after_a_5xx_an_unlisted_task_is_posted_again(rig: Rig) -> None:
    """When the list call does not show the task, the next delivery lists, then POSTs once."""
    msg = fail_once_with_503(rig)
    rig.api.answer_creates(created("job-4b"))

    assert rig.deliver(msg) == Outcome("finished", reason="created")
    assert rig.api.methods == ["POST", "GET", "POST"]
    assert dict(rig.api.seen[1].url.params) == {"limit": "100", "offset": "0"}
    status = rig.status(msg)
    assert (status.state, status.job_id, status.reconciled, status.attempts) == (
        TicketState.SUCCEEDED,
        "job-4b",
        False,
        2,
    )
    assert not rig.in_doubt(msg)


def test_after_a_5xx_the_name_listed_with_other_databases_fails_as_taken(rig: Rig) -> None:
    """A listed task of that name copying other databases fails the ticket, with no POST."""
    msg = fail_once_with_503(rig)
    rig.api.show(msg.payload, source_database="other_db")

    assert rig.deliver(msg) == Outcome("finished", reason="name taken")
    status = rig.status(msg)
    assert status.state is TicketState.FAILED
    assert status.error is not None
    assert status.error.error_code == "HTAP_SYNC.NAME_TAKEN"
    assert status.job_id is None
    assert rig.api.methods == ["POST", "GET"]


@pytest.mark.parametrize(
    ("listed", "reason", "methods"),
    [(True, "reconciled", ["POST", "GET"]), (False, "created", ["POST", "GET", "POST"])],
)
def test_a_read_timeout_is_reconciled_before_posting_again(
    rig: Rig, listed: bool, reason: str, methods: list[str]
) -> None:
    """A create with no answer after sending is in doubt: the next delivery lists first."""
    msg = rig.submit()
    rig.api.answer_creates(httpx.ReadTimeout)

    assert rig.deliver(msg) == Outcome(
        "retry", delay_s=first_jitter_s(rig.settings), reason="Ambiguous"
    )
    status = rig.status(msg)
    assert status.state is TicketState.RETRYING
    assert status.error is not None
    assert status.error.http_status is None
    assert status.error.error_msg.startswith("no answer after sending: ReadTimeout")
    assert rig.in_doubt(msg)

    if listed:
        rig.api.show(msg.payload)
    else:
        rig.api.answer_creates(created("job-5"))
    assert rig.deliver(msg) == Outcome("finished", reason=reason)
    assert rig.api.methods == methods
    assert rig.status(msg).state is TicketState.SUCCEEDED


class LoseFirstCreateAnswer(httpx.BaseTransport):
    """Forwards to the server, but loses the answer of the first create call after it ran."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self.lost = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        if request.method == "POST" and not self.lost:
            response.close()
            self.lost += 1
            raise httpx.ReadTimeout("answer lost after the server acted", request=request)
        return response

    def close(self) -> None:
        self._inner.close()


def test_a_lost_answer_from_the_simulator_is_reconciled_and_created_once(
    rig: Rig, simulator: SimulatorServer
) -> None:
    """Against the real simulator, a create whose answer was lost is found by the list call."""
    msg = rig.submit()
    transport = LoseFirstCreateAnswer()
    with httpx.Client(
        base_url=simulator.url, headers={"X-Auth-Token": TOKEN}, transport=transport
    ) as http:
        client = TaurusClient(http)
        assert rig.deliver(msg, client).kind == "retry"
        assert rig.in_doubt(msg)
        assert rig.deliver(msg, client) == Outcome("finished", reason="reconciled")

    assert transport.lost == 1
    p = msg.payload
    assert simulator.state.creates_for(p["project_id"], p["instance_id"], p["task_name"]) == 1
    assert simulator.state.create_calls == 1
    status = rig.status(msg)
    assert (status.state, status.reconciled, status.attempts) == (TicketState.SUCCEEDED, True, 1)


@pytest.mark.parametrize(
    ("listed", "reason", "methods", "attempts"),
    [(True, "reconciled", ["GET"], 1), (False, "created", ["GET", "POST"], 2)],
)
def test_a_worker_that_died_mid_attempt_is_reconciled_first(
    rig: Rig, clock: FakeClock, listed: bool, reason: str, methods: list[str], attempts: int
) -> None:
    """A delivery taking over an expired lease after start_attempt lists before it POSTs."""
    rig.use_clock(clock)
    msg = rig.submit()
    lease_s = rig.settings.lease_s
    claim = rig.store.begin(msg.ticket, msg.run, lease_s=lease_s)
    assert isinstance(claim, Claim)
    assert rig.store.start_attempt(claim, lease_s=lease_s)
    # ...and the worker dies here, its POST possibly processed by the API.
    assert rig.deliver(msg) == Outcome("skipped", reason="busy")

    clock.advance(lease_s + 1)
    if listed:
        rig.api.show(msg.payload)
    else:
        rig.api.answer_creates(created("job-6"))
    assert rig.deliver(msg) == Outcome("finished", reason=reason)
    assert rig.api.methods == methods
    status = rig.status(msg)
    assert (status.state, status.attempts, status.reconciled) == (
        TicketState.SUCCEEDED,
        attempts,
        listed,
    )
