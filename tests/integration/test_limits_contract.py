"""One contract for the rate-limit bucket and the breaker, run on both stores: memory and Redis.

The Redis stores run the algorithm in Lua; these tests pin that they behave exactly as the
pure Python functions do, at explicit times.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from htap_sync.common.connections import make_redis
from htap_sync.common.limits.breaker import (
    HALF_OPEN_RECHECK_S,
    BreakerPolicy,
    MemoryBreakerStore,
    RedisBreakerStore,
)
from htap_sync.common.limits.bucket import BucketPolicy, Grant, MemoryBucketStore, RedisBucketStore
from htap_sync.common.settings import load_settings

# Timing-bound: `make test` runs it in the serial set, after the others (see the Makefile).
pytestmark = pytest.mark.serial

POLICY = BucketPolicy(
    rate_per_s=10,
    burst=5,
    horizon_s=1.0,
    min_rate_per_s=1,
    cooldown_s=1.0,
    increase_step_per_s=2,
    increase_interval_s=5.0,
)
BREAKER = BreakerPolicy(threshold=3, cooldown_s=10, probes=2, probe_timeout_s=20)
T0 = 1_000_000.0


@pytest.fixture(scope="module")
def redis_client(redis_url: str) -> Iterator[Any]:
    """A client on the session's Redis."""
    client = make_redis(load_settings({"redis_url": redis_url}, env_file=None))
    yield client
    client.close()


@pytest.fixture(params=["memory", "redis"])
def buckets(request: pytest.FixtureRequest, redis_url: str) -> Any:
    """Each bucket store in turn."""
    if request.param == "memory":
        return MemoryBucketStore()
    return RedisBucketStore(make_redis(load_settings({"redis_url": redis_url}, env_file=None)))


@pytest.fixture(params=["memory", "redis"])
def breakers(request: pytest.FixtureRequest, redis_url: str) -> Any:
    """Each breaker store in turn."""
    if request.param == "memory":
        return MemoryBreakerStore()
    return RedisBreakerStore(make_redis(load_settings({"redis_url": redis_url}, env_file=None)))


def _key() -> str:
    return f"contract:{uuid.uuid4().hex}"


def test_burst_then_reservations_then_refusal(buckets: Any) -> None:
    """A full bucket gives its burst at once, reserves slots 1/rate apart up to the horizon,
    then says how long to wait without reserving."""
    key = _key()
    assert [buckets.acquire(key, POLICY, T0) for _ in range(5)] == [Grant(True, 0.0)] * 5
    reserved = [buckets.acquire(key, POLICY, T0) for _ in range(10)]
    assert all(g.granted for g in reserved)
    assert [g.wait_s for g in reserved] == pytest.approx([0.1 * i for i in range(1, 11)])
    refused = buckets.acquire(key, POLICY, T0)
    assert not refused.granted and refused.wait_s == pytest.approx(1.1)
    assert buckets.acquire(key, POLICY, T0 + 2.1) == Grant(True, 0.0)  # refilled by then


def test_a_429_halves_the_rate_blocks_and_recovers_step_by_step(buckets: Any) -> None:
    """Multiplicative decrease once per cooldown, Retry-After honoured, additive increase."""
    key = _key()
    buckets.acquire(key, POLICY, T0)
    buckets.penalize(key, POLICY, T0, 3.0)
    buckets.penalize(key, POLICY, T0 + 0.5, None)  # within the cooldown: no second halving
    assert buckets.state(key).rate == pytest.approx(5.0)
    blocked = buckets.acquire(key, POLICY, T0 + 1)
    assert not blocked.granted and blocked.wait_s == pytest.approx(2.0)
    buckets.penalize(key, POLICY, T0 + 1.5, None)
    assert buckets.state(key).rate == pytest.approx(2.5)
    for _ in range(5):
        buckets.penalize(key, POLICY, T0 + 100, None)
    # By T0+100 the rate had climbed back to 10 (+2 every 5 s); five 429s at once halve it once.
    assert buckets.state(key).rate == pytest.approx(5.0)
    buckets.acquire(key, POLICY, T0 + 105)
    assert buckets.state(key).rate == pytest.approx(7.0)  # one step of +2 after 5 s
    buckets.acquire(key, POLICY, T0 + 200)
    assert buckets.state(key).rate == pytest.approx(10.0)  # never above the configured rate


def test_the_rate_never_falls_below_its_floor(buckets: Any) -> None:
    """However many 429s, the effective rate stays at min_rate_per_s or above."""
    key = _key()
    for i in range(20):
        buckets.penalize(key, POLICY, T0 + 2 * i, None)
    assert buckets.state(key).rate == pytest.approx(POLICY.min_rate_per_s)


ops = st.lists(
    st.tuples(
        st.sampled_from(["acquire", "penalize"]), st.floats(0, 3), st.sampled_from([None, 1.0])
    ),
    min_size=1,
    max_size=40,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops)
def test_redis_bucket_equals_the_pure_algorithm(redis_client: Any, steps: list[Any]) -> None:
    """Any sequence of acquires and 429s gives the same answers in Lua as in Python."""
    memory, remote, key = MemoryBucketStore(), RedisBucketStore(redis_client), _key()
    now = T0
    for op, gap, retry_after in steps:
        now += gap
        if op == "acquire":
            a, b = memory.acquire(key, POLICY, now), remote.acquire(key, POLICY, now)
            assert a.granted == b.granted
            assert a.wait_s == pytest.approx(b.wait_s, abs=1e-9)
        else:
            memory.penalize(key, POLICY, now, retry_after)
            remote.penalize(key, POLICY, now, retry_after)
    mine, theirs = memory.state(key), remote.state(key)
    assert mine is not None and theirs is not None
    assert mine.rate == pytest.approx(theirs.rate)


@given(gaps=st.lists(st.floats(0, 0.5), min_size=1, max_size=300))
def test_no_one_second_window_sees_more_than_rate_plus_burst(gaps: list[float]) -> None:
    """Whatever the demand, calls made at their granted times never exceed rate + burst in any
    one-second window."""
    store, key, now, calls = MemoryBucketStore(), "k", T0, []
    for gap in gaps:
        now += gap
        grant = store.acquire(key, POLICY, now)
        if grant.granted:
            calls.append(now + grant.wait_s)
    calls.sort()
    j = 0
    for i, t in enumerate(calls):
        while calls[j] <= t - 1.0:
            j += 1
        assert i - j + 1 <= POLICY.rate_per_s + POLICY.burst


def test_breaker_opens_after_consecutive_failures_only(breakers: Any) -> None:
    """Failures open it only when consecutive; a success resets the count."""
    key = _key()
    for ok in (False, False, True, False, False):
        breakers.record(key, BREAKER, T0, ok)
    assert breakers.allow(key, BREAKER, T0) == 0
    breakers.record(key, BREAKER, T0, False)
    assert breakers.state(key).state == "open"
    assert breakers.allow(key, BREAKER, T0 + 4) == pytest.approx(6)


def test_breaker_probes_then_closes_or_reopens(breakers: Any) -> None:
    """After the cooldown it lets `probes` calls through; all succeeding closes it, one failing
    reopens it for another cooldown."""
    key = _key()
    for _ in range(3):
        breakers.record(key, BREAKER, T0, False)
    assert breakers.allow(key, BREAKER, T0 + 10) == 0
    assert breakers.allow(key, BREAKER, T0 + 10) == 0
    assert breakers.allow(key, BREAKER, T0 + 10) > 0  # only two probes
    breakers.record(key, BREAKER, T0 + 11, False)
    assert breakers.state(key).state == "open"
    assert breakers.state(key).opened == 2
    assert breakers.allow(key, BREAKER, T0 + 21) == 0
    assert breakers.allow(key, BREAKER, T0 + 21) == 0
    breakers.record(key, BREAKER, T0 + 22, True)
    assert breakers.state(key).state == "half_open"
    breakers.record(key, BREAKER, T0 + 22, True)
    assert breakers.state(key).state == "closed"
    assert breakers.allow(key, BREAKER, T0 + 22) == 0


def test_breaker_hands_lost_probes_out_again(breakers: Any) -> None:
    """Probes that never report back (their worker died) are given out again after a timeout."""
    key = _key()
    for _ in range(3):
        breakers.record(key, BREAKER, T0, False)
    assert breakers.allow(key, BREAKER, T0 + 10) == 0
    assert breakers.allow(key, BREAKER, T0 + 10) == 0
    assert breakers.allow(key, BREAKER, T0 + 29) == pytest.approx(1)
    assert breakers.allow(key, BREAKER, T0 + 30) == 0


def test_while_probes_are_out_others_look_again_within_a_second(breakers: Any) -> None:
    """A half-open breaker whose probes are out tells other calls to look again within
    HALF_OPEN_RECHECK_S, not when the probes would time out: once the probes close it, the
    fleet goes at once (a 65 s wait here held a soak's last tickets 40 s past a 20 s fault)."""
    key = _key()
    for _ in range(3):
        breakers.record(key, BREAKER, T0, False)
    assert breakers.allow(key, BREAKER, T0 + 10) == 0
    assert breakers.allow(key, BREAKER, T0 + 10) == 0
    assert breakers.allow(key, BREAKER, T0 + 10) == pytest.approx(HALF_OPEN_RECHECK_S)
    breakers.record(key, BREAKER, T0 + 10.5, True)
    breakers.record(key, BREAKER, T0 + 10.5, True)
    assert breakers.allow(key, BREAKER, T0 + 11) == 0


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(st.sampled_from(["allow", "ok", "fail"]), st.floats(0, 8)), max_size=60))
def test_redis_breaker_equals_the_pure_algorithm(redis_client: Any, steps: list[Any]) -> None:
    """Any sequence of checks and outcomes gives the same answers in Lua as in Python."""
    memory, remote, key, now = MemoryBreakerStore(), RedisBreakerStore(redis_client), _key(), T0
    for op, gap in steps:
        now += gap
        if op == "allow":
            assert memory.allow(key, BREAKER, now) == pytest.approx(remote.allow(key, BREAKER, now))
        else:
            memory.record(key, BREAKER, now, op == "ok")
            remote.record(key, BREAKER, now, op == "ok")
    if memory.state(key) is not None:
        assert memory.state(key) == remote.state(key)
