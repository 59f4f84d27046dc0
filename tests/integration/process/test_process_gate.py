"""process_ticket on a real Redis: the gate (rate limit and breaker) and replication."""

from __future__ import annotations

import time
from typing import Any

import pytest

from htap_sync.common.models import TicketState
from htap_sync.worker.delivery.ticket import Outcome
from tests.integration.process.worker_rig import Rig
from tests.scripted_api import created, refused

# -- the gate: rate limit and breaker -------------------------------------------------------------


class ClosedGate:
    """A gate that holds every call of one API for a while, and counts what it was told."""

    def __init__(self, api: str, wait_s: float, reason: Any = "rate") -> None:
        self.api, self.wait_s, self.reason = api, wait_s, reason
        self.outcomes: list[tuple[str, object]] = []

    def before_call(self, project_id: str, api: Any, lane: Any = None, tenant: Any = None) -> None:
        from htap_sync.common.limits.gate import MustWait

        if api == self.api:
            raise MustWait(self.wait_s, self.reason)

    def after_call(self, project_id: str, api: Any, error: object) -> None:
        self.outcomes.append((api, error))


@pytest.mark.parametrize("reason", ["rate", "breaker"])
def test_waiting_at_the_gate_costs_no_attempt_and_sends_nothing(rig: Rig, reason: str) -> None:
    """A ticket held by the rate limit or the breaker goes back to the delayed set, queued,
    with no attempt spent and no doubt raised."""
    msg = rig.submit()
    gate = ClosedGate("create", 42.0, reason)
    before = time.time()
    outcome = rig.deliver(msg, gate=gate)
    assert outcome == Outcome("waiting", delay_s=42.0, reason=reason)
    assert rig.api.methods == []
    status = rig.status(msg)
    assert (status.state, status.attempts) == (TicketState.QUEUED, 0)
    assert not rig.in_doubt(msg)
    due = rig.redis.zscore(rig.store.delayed_key, f"{msg.ticket}:{msg.run}")
    assert due is not None and before + 42 <= due <= time.time() + 42
    # The next delivery goes ahead as if nothing had happened.
    rig.api.answer_creates(created("job-gate"))
    assert rig.deliver(msg) == Outcome("finished", reason="created")
    assert rig.status(msg).attempts == 1


def test_the_gate_hears_every_outcome(rig: Rig) -> None:
    """Each API call's outcome reaches the gate: the breaker and the bucket learn from it."""
    msg = rig.submit()
    gate = ClosedGate("none", 0.0)
    rig.api.answer_creates(refused(503, "DBS.108000", "down"), created("job-x"))
    for _ in range(2):
        rig.deliver(msg, gate=gate)
    assert [api for api, _ in gate.outcomes] == ["create", "list", "create"]
    assert [type(e).__name__ for _, e in gate.outcomes] == ["ServerError", "NoneType", "NoneType"]


def test_no_create_call_until_replicas_hold_the_in_doubt_mark(rig: Rig) -> None:
    """Asked for a replica that this lone Redis lacks, the worker waits and sends nothing."""
    msg = rig.submit()
    outcome = rig.deliver(msg, replicas=1)
    assert (outcome.kind, outcome.reason) == ("waiting", "replication")
    assert rig.api.methods == []
    status = rig.status(msg)
    assert (status.state, status.attempts) == (TicketState.RETRYING, 0)
    assert not rig.in_doubt(msg)
    assert status.error is not None and status.error.error_code == "HTAP_SYNC.NOT_REPLICATED"
    # Once no replica is asked for (or one acknowledges), the same message goes through.
    rig.api.answer_creates(created("job-r"))
    assert rig.deliver(msg) == Outcome("finished", reason="created")
    assert rig.status(msg).attempts == 1
