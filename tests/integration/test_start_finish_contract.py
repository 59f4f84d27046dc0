"""One contract for ``start`` and ``finish``, the two steps of a delivery's common path.

Run on the memory store with a gate in memory, on Redis with the gate on the same client (one
``start.lua``/``finish.lua`` each), and on Redis with a gate in memory or on another client
(the store cannot run the gate's checks: it takes the same steps one by one). Whatever the
backend: a wait of the gate marks nothing and costs no attempt, a ticket in doubt is only
claimed, and a success tells the breaker.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import redis

from htap_sync.common.connections import make_redis
from htap_sync.common.limits.breaker import MemoryBreakerStore, RedisBreakerStore
from htap_sync.common.limits.bucket import MemoryBucketStore, RedisBucketStore
from htap_sync.common.limits.gate import Gate, breaker_policy
from htap_sync.common.models import Attempt, TicketState, parse_request
from htap_sync.common.settings import Settings, load_settings
from htap_sync.common.tickets.claims import (
    Claim,
    ClaimStore,
    FinishCall,
    NotReplicated,
    StartCall,
    Started,
)
from htap_sync.common.tickets.claims_memory import MemoryClaimStore
from htap_sync.common.tickets.claims_redis import RedisClaimStore
from tests.conftest import request_data
from tests.scripted_api import FakeClock

LEASE_S = 10.0
PROJECT = request_data()["project_id"]


@dataclass
class Rig:
    """A ticket store and a gate (rate limit, breaker) for one test."""

    store: ClaimStore
    gate: Gate
    settings: Settings
    breakers: MemoryBreakerStore | RedisBreakerStore

    def submit(self, name: str = "start_task") -> tuple[str, str, str]:
        """A new ticket: ``(ticket, run, fingerprint of its request)``."""
        request = parse_request(request_data(task_name=name))
        ticket, run, _ = self.store.submit(request)  # type: ignore[attr-defined]
        return ticket, run, request.fingerprint()

    def start(self, ticket: str, run: str, fingerprint: str, **options: Any) -> Started | str:
        """The start of a delivery through this rig's gate."""
        limits = options.pop("limits", self.gate.limits(PROJECT, "create"))
        call = StartCall(ticket, run, fingerprint, limits)
        return self.store.start(call, lease_s=LEASE_S, **options)

    def started(self, ticket: str, run: str, fingerprint: str, **options: Any) -> Started:
        """A start that claimed the ticket."""
        answer = self.start(ticket, run, fingerprint, **options)
        assert isinstance(answer, Started), answer
        return answer

    def marks(self, ticket: str, run: str) -> tuple[int, bool]:
        """``(attempts, in doubt)`` of an unfinished ticket, read by taking it over (its lease
        is given up first, as a worker that lost Redis does)."""
        assert self.store.release(ticket, run, due_at=time.time())
        claim = self.store.begin(ticket, run, lease_s=LEASE_S)
        assert isinstance(claim, Claim), claim
        return claim.attempts, claim.in_doubt

    def open_breaker(self, *, cooled: bool = False) -> None:
        """Enough server failures to open the breaker (its cooldown over, with ``cooled``)."""
        policy = breaker_policy(self.settings)
        at = time.time() - (policy.cooldown_s + 1 if cooled else 0)
        for _ in range(policy.threshold):
            self.breakers.record(self.gate.breaker_key(), policy, at, False)


@pytest.fixture(scope="module")
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on the session's Redis."""
    client = make_redis(load_settings({"redis_url": redis_url}, env_file=None))
    yield client
    client.close()


def rig_settings(redis_url: str, **changes: Any) -> Settings:
    """Settings of one rig: its own keys, a bucket of one token refilled every 100 s."""
    values = {
        "redis_url": redis_url,
        "endpoint": "https://taurus.invalid",
        "key_prefix": f"startfinish-{uuid.uuid4().hex[:12]}",
        "rate_limit_per_s": 0.01,
        "rate_burst": 1,
        "breaker_threshold": 2,
        "breaker_cooldown_s": 30.0,
        "breaker_probes": 1,
    }
    return load_settings({**values, **changes}, env_file=None)


BACKENDS = ["memory", "redis", "redis-store-memory-gate", "redis-gate-elsewhere"]


def build_rig(kind: str, request: pytest.FixtureRequest, settings: Settings) -> Rig:
    """A rig of one backend (see ``BACKENDS``) on ``settings``' keys; real-time clocks."""
    if kind == "memory":
        store: ClaimStore = MemoryClaimStore(result_ttl_s=600, watch_s=60, clock=time.time)
    else:
        store = RedisClaimStore(
            request.getfixturevalue("redis_client"),
            key_prefix=settings.key_prefix,
            result_ttl_s=600,
            watch_s=60,
        )
    if kind.startswith("redis-gate"):
        # On another client (as if another Redis): the store cannot run the gate's scripts.
        other = make_redis(settings)
        request.addfinalizer(other.close)
        breakers: MemoryBreakerStore | RedisBreakerStore = RedisBreakerStore(other)
        gate = Gate(RedisBucketStore(other), breakers, settings)
    elif kind == "redis":
        client = request.getfixturevalue("redis_client")
        breakers = RedisBreakerStore(client)
        gate = Gate(RedisBucketStore(client), breakers, settings)
    else:
        breakers = MemoryBreakerStore(time.time)
        gate = Gate(MemoryBucketStore(time.time), breakers, settings)
    return Rig(store, gate, settings, breakers)


@pytest.fixture(params=BACKENDS)
def rig(request: pytest.FixtureRequest, redis_url: str) -> Rig:
    """Each backend in turn, on its own keys; the stores' clocks are the real time."""
    return build_rig(request.param, request, rig_settings(redis_url))


def test_start_claims_passes_the_gate_and_marks_the_attempt(rig: Rig) -> None:
    """A fresh ticket: claimed, a token taken, the attempt counted and the ticket in doubt;
    the claim says how the ticket was before."""
    ticket, run, fingerprint = rig.submit()
    started = rig.started(ticket, run, fingerprint)
    assert (started.verdict, started.wait_s, started.unreplicated) == ("marked", 0.0, None)
    claim = started.claim
    assert (claim.in_doubt, claim.attempts, claim.prior) == (False, 0, TicketState.QUEUED)
    assert claim.holder and claim.fingerprint == fingerprint
    assert rig.store.get(ticket).state is TicketState.RUNNING
    assert rig.store.begin(ticket, run, lease_s=LEASE_S) == "busy"
    bucket = rig.gate.bucket(PROJECT)
    assert bucket is not None and bucket.tokens == pytest.approx(0.0, abs=0.01)
    assert rig.marks(ticket, run) == (1, True)


def test_start_refuses_as_begin_does(rig: Rig) -> None:
    """Unknown ticket, another run, a live holder, a finished ticket: nothing happens."""
    ticket, run, fingerprint = rig.submit()
    assert rig.start("no-such-ticket", run, fingerprint) == "missing"
    assert rig.start(ticket, uuid.uuid4().hex, fingerprint) == "stale"
    held = rig.started(ticket, run, fingerprint)
    assert rig.start(ticket, run, fingerprint) == "busy"
    assert rig.store.finish(FinishCall(held.claim, "job-1", None, None))
    assert rig.start(ticket, run, fingerprint) == "done"
    assert rig.store.get(ticket).attempts == 1


def test_a_ticket_in_doubt_or_with_another_request_is_only_claimed(rig: Rig) -> None:
    """No token, no attempt, no mark: the delivery looks first, or refuses the message."""
    ticket, run, fingerprint = rig.submit()
    other = rig.started(ticket, run, "another request")
    assert (other.verdict, other.claim.attempts) == ("claimed", 0)
    assert rig.gate.bucket(PROJECT) is None  # no token taken
    assert rig.store.start_attempt(other.claim, lease_s=LEASE_S)
    assert rig.store.release(ticket, run, due_at=time.time())  # in doubt, lease given up
    again = rig.started(ticket, run, fingerprint)
    assert (again.verdict, again.claim.in_doubt, again.claim.attempts) == ("claimed", True, 1)
    assert rig.gate.bucket(PROJECT) is None
    assert rig.store.get(ticket).attempts == 1


def test_without_limits_the_ticket_is_only_claimed(rig: Rig) -> None:
    """A gate the store cannot ask (None): the delivery passes it and marks step by step."""
    ticket, run, fingerprint = rig.submit()
    started = rig.started(ticket, run, fingerprint, limits=None)
    assert started.verdict == "claimed"
    assert rig.store.get(ticket).state is TicketState.RUNNING
    assert rig.marks(ticket, run) == (0, False)


def test_an_empty_bucket_is_a_wait_that_marks_nothing(rig: Rig) -> None:
    """The bucket's one token goes to the first ticket; the second waits for the next one,
    claimed but neither counted nor in doubt, and goes back as it was."""
    first = rig.submit("first_task")
    assert rig.started(*first).verdict == "marked"
    ticket, run, fingerprint = rig.submit("second_task")
    started = rig.started(ticket, run, fingerprint)
    assert started.verdict == "rate"
    assert 90 < started.wait_s <= 100  # a token every 100 s
    assert rig.store.postpone(started.claim, due_at=time.time() + started.wait_s)
    assert rig.store.get(ticket).state is TicketState.QUEUED
    assert rig.marks(ticket, run) == (0, False)


def test_an_open_breaker_is_a_wait_that_marks_nothing(rig: Rig) -> None:
    """An open breaker holds the ticket for the rest of its cooldown, at no attempt."""
    rig.open_breaker()
    ticket, run, fingerprint = rig.submit()
    started = rig.started(ticket, run, fingerprint)
    assert started.verdict == "breaker"
    assert 25 < started.wait_s <= 30
    assert rig.marks(ticket, run) == (0, False)


def test_finish_records_the_task_and_tells_the_breaker(rig: Rig) -> None:
    """A half-open breaker's probe goes out with the start; the finish of its success closes
    the breaker and succeeds the ticket, out of doubt, with its note."""
    rig.open_breaker(cooled=True)
    ticket, run, fingerprint = rig.submit()
    started = rig.started(ticket, run, fingerprint)
    assert started.verdict == "marked"
    breaker = rig.gate.breaker()
    assert breaker is not None and breaker.state == "half_open"
    note = Attempt.model_validate({"at": datetime.now(UTC), "call": "create", "outcome": "created"})
    limits = rig.gate.limits(PROJECT, "create")
    assert rig.store.finish(FinishCall(started.claim, "job-9", note, limits))
    breaker = rig.gate.breaker()
    assert breaker is not None and breaker.state == "closed"
    status = rig.store.get(ticket)
    assert (status.state, status.job_id, status.attempts) == (TicketState.SUCCEEDED, "job-9", 1)
    assert [entry.outcome for entry in status.history] == ["created"]
    assert rig.start(ticket, run, fingerprint) == "done"


def test_a_success_on_a_closed_breaker_leaves_it_unwritten(rig: Rig) -> None:
    """Nothing changes for a closed breaker without failures: it is never written."""
    ticket, run, fingerprint = rig.submit()
    started = rig.started(ticket, run, fingerprint)
    limits = rig.gate.limits(PROJECT, "create")
    assert rig.store.finish(FinishCall(started.claim, "job-1", None, limits))
    assert rig.gate.breaker() is None


def test_finish_of_a_lost_claim_is_refused(rig: Rig) -> None:
    """A delivery whose lease was taken over cannot finish the ticket."""
    ticket, run, fingerprint = rig.submit()
    started = rig.started(ticket, run, fingerprint)
    stranger = Claim(ticket, run, holder="someone-else")
    assert not rig.store.finish(FinishCall(stranger, "job-x", None, None))
    assert rig.store.get(ticket).state is TicketState.RUNNING
    assert rig.store.finish(FinishCall(started.claim, "job-1", None, None))


def test_a_mark_that_must_reach_a_missing_replica_is_written_but_not_acted_on(rig: Rig) -> None:
    """Asked for a replica the store does not have: marked, and said to be unreplicated."""
    ticket, run, fingerprint = rig.submit()
    started = rig.started(ticket, run, fingerprint, replicas=1, wait_s=0.01)
    assert started.verdict == "marked"
    assert isinstance(started.unreplicated, NotReplicated)
    assert (started.unreplicated.acked, started.unreplicated.wanted) == (0, 1)
    assert rig.marks(ticket, run) == (1, True)


def test_fake_clock_store_still_starts(redis_client: redis.Redis) -> None:
    """The store's own clock (not the gate's) times the lease: a FakeClock store starts too."""
    clock = FakeClock()
    settings = rig_settings("redis://unused")
    store = RedisClaimStore(
        redis_client, key_prefix=settings.key_prefix, result_ttl_s=600, clock=clock
    )
    request = parse_request(request_data(task_name="clocked"))
    ticket, run, _ = store.submit(request)
    started = store.start(StartCall(ticket, run, request.fingerprint(), None), lease_s=LEASE_S)
    assert isinstance(started, Started) and started.verdict == "claimed"
    assert float(redis_client.hget(store.key(ticket), "lease_until") or 0) == clock.now + LEASE_S
