"""The gate before each API call: short waits sleep, long ones defer, the breaker holds calls."""

from __future__ import annotations

import pytest

from htap_sync.common.errors import Rejected, ServerError, Throttled, TransportError
from htap_sync.common.limits.breaker import MemoryBreakerStore
from htap_sync.common.limits.bucket import MemoryBucketStore
from htap_sync.common.limits.gate import Gate, MustWait, bucket_policy
from htap_sync.common.settings import Settings, load_settings

PROJECT = "0123456789abcdef0123456789abcdef"


class Clock:
    """A clock that moves when the gate sleeps, and only then."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _gate(clock: Clock, **overrides: object) -> Gate:
    settings: Settings = load_settings(
        {
            "endpoint": "https://gaussdb.cn-north-4.myhuaweicloud.com",
            "rate_limit_per_s": 2,
            "rate_burst": 1,
            "breaker_threshold": 2,
            "breaker_cooldown_s": 30,
            **overrides,
        },
        env_file=None,
    )
    return Gate(MemoryBucketStore(clock), MemoryBreakerStore(clock), settings, sleep=clock.sleep)


def test_calls_are_paced_by_sleeping_until_their_slot() -> None:
    """With rate 2/s and burst 1, consecutive calls go out 0.5 s apart, the worker sleeping."""
    clock = Clock()
    gate = _gate(clock)
    for _ in range(4):
        gate.before_call(PROJECT, "create")
    assert clock.slept == pytest.approx([0.5, 0.5, 0.5])


def test_a_long_wait_defers_instead_of_sleeping() -> None:
    """A Retry-After longer than the sleep limit makes the gate say 'wait', without sleeping."""
    clock = Clock()
    gate = _gate(clock)
    gate.before_call(PROJECT, "create")
    gate.after_call(PROJECT, "create", Throttled("slow down", http_status=429, retry_after_s=40))
    with pytest.raises(MustWait) as info:
        gate.before_call(PROJECT, "create")
    assert info.value.reason == "rate"
    assert info.value.wait_s == pytest.approx(40)
    assert clock.slept == []
    state = gate.bucket(PROJECT)
    assert state is not None and state.rate == pytest.approx(1.0)  # halved


def test_buckets_are_per_project_and_api() -> None:
    """Another project, or the list call, has a bucket of its own."""
    clock = Clock()
    gate = _gate(clock)
    gate.before_call(PROJECT, "create")
    gate.before_call("f" * 32, "create")
    gate.before_call(PROJECT, "list")
    assert clock.slept == []


def test_server_failures_open_the_breaker_and_answers_do_not() -> None:
    """5xx and transport failures count against the endpoint; 4xx and 429 are answers."""
    clock = Clock()
    gate = _gate(clock, rate_limit_per_s=1000, rate_burst=1000)
    gate.after_call(PROJECT, "create", ServerError("boom", http_status=500))
    gate.after_call(PROJECT, "create", Rejected("bad", http_status=400))  # resets the count
    gate.after_call(PROJECT, "create", Throttled("slow", http_status=429))
    gate.after_call(PROJECT, "create", ServerError("boom", http_status=502))
    gate.before_call(PROJECT, "create")
    gate.after_call(PROJECT, "list", TransportError("refused"))
    with pytest.raises(MustWait) as info:
        gate.before_call(PROJECT, "create")
    assert info.value.reason == "breaker"
    assert info.value.wait_s == pytest.approx(30)
    breaker = gate.breaker()
    assert breaker is not None and (breaker.state, breaker.opened) == ("open", 1)


def test_a_call_made_for_a_lane_asks_in_its_place() -> None:
    """A call made for a lane (a reconciliation's or a follow round's list) asks the bucket
    in its place: while interactive calls hold the next tokens (other workers sleeping until
    theirs: this gate's sleeps do not move the clock), a bulk call is deferred, never slept,
    and an interactive one still gets the next slot."""
    clock = Clock()
    slept: list[float] = []
    gate = _gate(clock)
    gate._sleep = slept.append
    gate.before_call(PROJECT, "list", "bulk", "team_a")  # the burst's token
    gate.before_call(PROJECT, "list", "interactive", None)
    gate.before_call(PROJECT, "list", "interactive", None)
    assert slept == pytest.approx([0.5, 1.0])
    with pytest.raises(MustWait) as info:
        gate.before_call(PROJECT, "list", "bulk", "team_a")
    assert info.value.reason == "rate"
    assert slept == pytest.approx([0.5, 1.0])
    gate.before_call(PROJECT, "list", "interactive", None)
    assert slept == pytest.approx([0.5, 1.0, 1.5])


@pytest.mark.parametrize(
    ("rate", "burst", "kept"),
    [(10, 5, 3), (10, 10, 8), (5, 5, 4), (100, 10, 1), (2, 1, 1)],
)
def test_the_bucket_keeps_back_what_the_rate_gives_while_calls_travel(
    rate: float, burst: int, kept: int
) -> None:
    """Arrivals in any one second span grants over 1 s plus the send jitter (0.2 s): the
    bucket keeps ``burst - rate x 0.2`` tokens (at least 1), so the API sees at most
    rate + burst in a second even when calls leave their tokens late."""
    settings = load_settings({"rate_limit_per_s": rate, "rate_burst": burst}, env_file=None)
    policy = bucket_policy(settings)
    assert (policy.rate_per_s, policy.burst) == (rate, kept)
