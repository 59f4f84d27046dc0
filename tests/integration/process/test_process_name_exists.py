"""process_ticket on a real Redis: "name exists" (409) answers and Cancelled tasks."""

from __future__ import annotations

import pytest

from htap_sync.common.models import ErrorPayload, TicketState
from htap_sync.common.tickets.claims import Claim
from htap_sync.worker.delivery.ticket import Outcome
from tests.integration.process.worker_rig import NAME_EXISTS, Rig, fail_once_with_503
from tests.scripted_api import refused


def test_name_exists_after_an_ambiguous_attempt_leads_to_reconciliation(rig: Rig) -> None:
    """A 409 name-exists answer while in doubt is our own task: list, retry, never fail."""
    msg = fail_once_with_503(rig)
    # The list call lags behind the create: it does not show the task yet, the POST says 409.
    rig.api.answer_creates(refused(409, NAME_EXISTS, "Task name already exists."))

    outcome = rig.deliver(msg)
    assert (outcome.kind, outcome.reason) == ("retry", "Rejected")
    status = rig.status(msg)
    assert status.state is TicketState.RETRYING
    assert status.error is not None
    assert (status.error.http_status, status.error.error_code) == (409, NAME_EXISTS)
    assert status.attempts == 2
    assert rig.in_doubt(msg)

    # The refusal was checked with the list call at once (GET after the second POST).
    assert rig.api.methods == ["POST", "GET", "POST", "GET"]

    rig.api.show(msg.payload)
    assert rig.deliver(msg) == Outcome("finished", reason="reconciled")
    assert rig.api.methods == ["POST", "GET", "POST", "GET", "GET"]
    status = rig.status(msg)
    assert (status.state, status.reconciled, status.job_id) == (TicketState.SUCCEEDED, True, None)
    assert status.job_id_reason is not None and status.found is not None
    assert status.found["task_name"] == msg.payload["task_name"]


@pytest.mark.parametrize("http_status", [400, 409])
def test_name_exists_with_an_in_doubt_mark_lost_still_reconciles(
    rig: Rig, http_status: int
) -> None:
    """After an earlier attempt (its doubt lost, e.g. by a failover), 'name exists' is ours."""
    msg = rig.submit()
    claim = rig.store.begin(msg.ticket, msg.run, lease_s=rig.settings.lease_s)
    assert isinstance(claim, Claim)
    assert rig.store.start_attempt(claim, lease_s=rig.settings.lease_s)
    rig.store.retrying(claim, ErrorPayload(error_msg="lost"), in_doubt=False, due_at=0)
    rig.api.answer_creates(refused(http_status, NAME_EXISTS, "Task name already exists."))
    outcome = rig.deliver(msg)
    assert (outcome.kind, rig.api.methods) == ("retry", ["POST", "GET"])
    assert rig.in_doubt(msg)
    rig.api.show(msg.payload)
    assert rig.deliver(msg) == Outcome("finished", reason="reconciled")


def test_name_exists_on_a_first_attempt_fails_unless_listed(rig: Rig) -> None:
    """On a first attempt, 'name exists' is checked once by list: absent, someone else's: fail."""
    msg = rig.submit()
    rig.api.answer_creates(refused(409, NAME_EXISTS, "Task name already exists."))
    assert rig.deliver(msg) == Outcome("finished", reason="Rejected")
    status = rig.status(msg)
    assert status.state is TicketState.FAILED
    assert status.error is not None
    assert status.error.error_code == NAME_EXISTS
    assert rig.api.methods == ["POST", "GET"]


def test_name_exists_on_a_first_attempt_with_our_task_listed_succeeds(rig: Rig) -> None:
    """A task of that name and the same databases is the one asked for: reconciled, no job id."""
    msg = rig.submit()
    rig.api.show(msg.payload)
    rig.api.answer_creates(refused(400, NAME_EXISTS, "The task name already exists."))
    assert rig.deliver(msg) == Outcome("finished", reason="reconciled")
    assert rig.api.methods == ["POST", "GET"]
    assert rig.status(msg).reconciled


def test_a_cancelled_task_of_ours_is_ours(rig: Rig) -> None:
    """After an earlier attempt that may have created it, a task of our name and databases
    Cancelled in the list is ours: succeeded (following reports the failure), found by the
    look before any create; never created a second time, nor 409 after 409."""
    msg = fail_once_with_503(rig)
    rig.api.show(msg.payload, stage="Cancelled")
    rig.api.answer_creates(refused(409, NAME_EXISTS, "Task name already exists."))
    assert rig.deliver(msg) == Outcome("finished", reason="reconciled")
    assert rig.api.methods == ["POST", "GET"]
    status = rig.status(msg)
    assert status.reconciled and status.found is not None
    assert status.found["stage"] == "Cancelled"


def test_a_cancelled_task_of_someone_else_fails_a_first_attempt(rig: Rig) -> None:
    """On a first attempt, a Cancelled task holding the name is not ours: the 409 stands."""
    msg = rig.submit()
    rig.api.show(msg.payload, stage="Cancelled")
    rig.api.answer_creates(refused(409, NAME_EXISTS, "Task name already exists."))
    assert rig.deliver(msg) == Outcome("finished", reason="Rejected")
    assert rig.api.methods == ["POST", "GET"]
