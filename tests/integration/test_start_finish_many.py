"""``start_many`` and ``finish_many``, a batch's common path in one step each: every ticket
gets what ``start`` and ``finish`` would give it alone, in order (its own claim, token,
breaker check, mark, success). On the four backends of the start/finish contract (one
``start_many.lua``/``finish_many.lua`` when the gate lives in the store's Redis, ticket by
ticket otherwise)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from htap_sync.common.models import Attempt, TicketState
from htap_sync.common.tickets.claims import Claim, FinishCall, NotReplicated, StartCall, Started
from tests.integration.test_start_finish_contract import (
    BACKENDS,
    LEASE_S,
    PROJECT,
    Rig,
    build_rig,
    redis_client,  # noqa: F401 - the fixture build_rig asks for
    rig_settings,
)


def rig_of(request: pytest.FixtureRequest, redis_url: str, **changes: Any) -> Rig:
    return build_rig(request.param, request, rig_settings(redis_url, **changes))


@pytest.fixture(params=BACKENDS)
def rig(request: pytest.FixtureRequest, redis_url: str) -> Rig:
    """One token every 100 s (burst 1), breaker of threshold 2 and one probe."""
    return rig_of(request, redis_url)


@pytest.fixture(params=BACKENDS)
def roomy(request: pytest.FixtureRequest, redis_url: str) -> Rig:
    """The same with tokens to spare (burst 10)."""
    return rig_of(request, redis_url, rate_burst=10)


def start_many(rig: Rig, calls: list[StartCall], **options: Any) -> list[Started | str]:
    return rig.store.start_many(calls, lease_s=LEASE_S, **options)


def call(rig: Rig, ticket: str, run: str, fingerprint: str) -> StartCall:
    return StartCall(ticket, run, fingerprint, rig.gate.limits(PROJECT, "create"))


def test_each_ticket_of_a_batch_starts_as_alone(rig: Rig) -> None:
    """In order: the first takes the one token and is marked; the second waits for the next
    token (nothing marked); refusals come back as begin's; another request is only claimed
    (no token); a held ticket is busy, a finished one done."""
    first, second, other, held, ended = (rig.submit(f"batch_{i}") for i in range(5))
    busy = rig.started(*held, limits=None)
    done = rig.started(*ended, limits=None)
    assert rig.store.finish(FinishCall(done.claim, "job-0", None, None))
    calls = [
        call(rig, *first),
        call(rig, *second),
        call(rig, "no-such-ticket", first[1], first[2]),
        call(rig, first[0], uuid.uuid4().hex, first[2]),
        call(rig, other[0], other[1], "another request"),
        call(rig, *held),
        call(rig, *ended),
    ]
    answers = start_many(rig, calls)
    assert answers[2:4] == ["missing", "stale"] and answers[5:] == ["busy", "done"]
    marked, waits, claimed = answers[0], answers[1], answers[4]
    assert isinstance(marked, Started) and isinstance(waits, Started)
    assert isinstance(claimed, Started)
    assert (marked.verdict, marked.claim.attempts, marked.claim.in_doubt) == ("marked", 0, False)
    assert waits.verdict == "rate" and 90 < waits.wait_s <= 100
    assert (claimed.verdict, claimed.claim.attempts) == ("claimed", 0)
    assert rig.marks(*first[:2]) == (1, True)
    assert rig.marks(*second[:2]) == (0, False)
    assert rig.marks(*other[:2]) == (0, False)
    # The held ticket is still the other delivery's: its finish is accepted (a hold the
    # batch had taken over would refuse it).
    assert rig.store.finish(FinishCall(busy.claim, "job-held", None, None))


def test_each_ticket_asks_the_breaker_and_each_success_tells_it(roomy: Rig) -> None:
    """A half-open breaker lets one probe through: the first ticket; the second waits for the
    breaker. The probe's finish closes it; a claim taken over is refused, alone."""
    rig = roomy
    rig.open_breaker(cooled=True)
    probe, held = rig.submit("probe_task"), rig.submit("held_task")
    answers = start_many(rig, [call(rig, *probe), call(rig, *held)])
    first, second = answers
    assert isinstance(first, Started) and isinstance(second, Started)
    assert (first.verdict, second.verdict) == ("marked", "breaker")
    limits = rig.gate.limits(PROJECT, "create")
    note = Attempt.model_validate({"at": datetime.now(UTC), "call": "create", "outcome": "created"})
    stranger = Claim(held[0], held[1], holder="someone-else")
    done = rig.store.finish_many(
        [
            FinishCall(first.claim, "job-probe", note, limits),
            FinishCall(stranger, "job-x", None, limits),
        ]
    )
    assert done == [True, False]
    breaker = rig.gate.breaker()
    assert breaker is not None and breaker.state == "closed"
    status = rig.store.get(probe[0])
    assert (status.state, status.job_id, status.attempts) == (
        TicketState.SUCCEEDED,
        "job-probe",
        1,
    )
    assert [entry.outcome for entry in status.history] == ["created"]
    assert rig.store.get(held[0]).state is TicketState.RUNNING


def test_marks_that_must_reach_a_missing_replica_are_each_unreplicated(roomy: Rig) -> None:
    """One WAIT for the batch: every ticket it marked is said to lack its replica."""
    rig = roomy
    tickets = [rig.submit(f"replica_{i}") for i in range(3)]
    answers = start_many(rig, [call(rig, *t) for t in tickets], replicas=1, wait_s=0.01)
    for answer, (ticket, run, _) in zip(answers, tickets, strict=True):
        assert isinstance(answer, Started) and answer.verdict == "marked"
        assert isinstance(answer.unreplicated, NotReplicated)
        assert rig.marks(ticket, run) == (1, True)


def test_an_empty_batch_is_no_step(rig: Rig) -> None:
    assert start_many(rig, []) == []
    assert rig.store.finish_many([]) == []
