"""The bucket's lanes and fair shares, one contract on both stores (memory and Redis's Lua).

Each test drives the bucket at explicit times, as a fleet of callers would: a caller that is
granted a token comes back for its next one when its reservation is due, one refused comes
back when told. The shares are counted in grants and held against the configured rate.
"""

from __future__ import annotations

import bisect
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from htap_sync.common.connections import make_redis
from htap_sync.common.limits.bucket import BucketPolicy, MemoryBucketStore, RedisBucketStore
from htap_sync.common.limits.bucket_lanes import LaneAsk
from htap_sync.common.settings import load_settings

POLICY = BucketPolicy(rate_per_s=10, burst=5, horizon_s=1.0)
T0 = 1_000_000.0
LANE_HORIZON_S = 2.0


def bulk(tenant: str, weight: float = 1.0, min_share: float = 0.2) -> LaneAsk:
    """A bulk ask of ``tenant``."""
    return LaneAsk("bulk", tenant, weight, min_share, LANE_HORIZON_S)


INTERACTIVE = LaneAsk("interactive", "p", 1.0, 0.2, LANE_HORIZON_S)


@pytest.fixture(params=["memory", "redis"])
def buckets(request: pytest.FixtureRequest, redis_url: str) -> Any:
    """Each bucket store in turn."""
    if request.param == "memory":
        return MemoryBucketStore()
    return RedisBucketStore(make_redis(load_settings({"redis_url": redis_url}, env_file=None)))


@dataclass
class Callers:
    """``count`` callers asking as ``ask`` from ``start_s`` to ``stop_s`` (simulated)."""

    ask: LaneAsk | None
    count: int
    start_s: float = 0.0
    stop_s: float = 1e9


def drive(buckets: Any, groups: list[Callers], seconds: float) -> list[list[float]]:
    """Run the callers for ``seconds``; the times (s) of each group's tokens."""
    key = f"lanes:{uuid.uuid4().hex}"
    due = sorted((g.start_s, i) for i, g in enumerate(groups) for _ in range(g.count))
    tokens: list[list[float]] = [[] for _ in groups]
    while due:
        at, i = due.pop(0)
        if at > min(seconds, groups[i].stop_s):
            continue  # this caller is done
        grant = buckets.acquire(key, POLICY, T0 + at, groups[i].ask)
        if grant.granted:
            tokens[i].append(at + grant.wait_s)
            again = at + grant.wait_s + 0.001  # calls, then asks for its next ticket
        else:
            again = at + grant.wait_s + 0.05  # back from the delayed set
        bisect.insort(due, (again, i))
    return tokens


def _within(tokens: list[float], start: float, stop: float) -> int:
    return sum(start <= t < stop for t in tokens)


def test_an_interactive_ask_goes_before_a_bulk_backlog(buckets: Any) -> None:
    """Behind 8 bulk callers holding the bucket's reservations, an interactive ask is
    granted at once, its token due within the bulk horizon, and bulk keeps the rest."""
    key = f"lanes:{uuid.uuid4().hex}"
    refused = 0
    for step in range(200):  # 20 s of a bulk backlog: reservations to the horizon
        grant = buckets.acquire(key, POLICY, T0 + step * 0.1, bulk("a"))
        refused += not grant.granted
    while buckets.acquire(key, POLICY, T0 + 20.0, bulk("a")).granted:
        pass  # the horizon is full
    grant = buckets.acquire(key, POLICY, T0 + 20.0, INTERACTIVE)
    assert grant.granted
    assert grant.wait_s <= POLICY.horizon_s + 1 / POLICY.rate_per_s + 1e-9
    assert not buckets.acquire(key, POLICY, T0 + 20.0, bulk("a")).granted


def test_without_a_lane_an_ask_waits_its_turn(buckets: Any) -> None:
    """The same backlog without lanes: an unlaned ask is refused like any other."""
    key = f"lanes:{uuid.uuid4().hex}"
    while buckets.acquire(key, POLICY, T0, None).granted:
        pass
    assert not buckets.acquire(key, POLICY, T0, None).granted


def test_bulk_keeps_its_minimum_share_under_an_interactive_flood(buckets: Any) -> None:
    """16 interactive callers against 8 bulk ones: bulk gets 20 % (+-5 points) of the rate,
    the bucket gives the configured rate; with a minimum share of 0, bulk gets nothing."""
    got = drive(buckets, [Callers(INTERACTIVE, 16), Callers(bulk("a"), 8)], 60)
    total = sum(_within(t, 10, 60) for t in got)
    assert total == pytest.approx(50 * POLICY.rate_per_s, rel=0.03)
    assert _within(got[1], 10, 60) / total == pytest.approx(0.2, abs=0.05)
    starved = drive(buckets, [Callers(INTERACTIVE, 16), Callers(bulk("b", min_share=0), 8)], 30)
    assert _within(starved[1], 5, 30) == 0


def test_a_starved_bulk_ask_is_served_whenever_it_comes(buckets: Any) -> None:
    """Interactive callers hold every token their horizon allows; a bulk ask is refused and
    bulk is starved: the next bulk ask (one lifted to the interactive queue's head, one at a
    time) is served at once, past every interactive reservation, and interactive then
    reserves only within the bucket's own horizon."""
    key = f"lanes:{uuid.uuid4().hex}"
    at = T0 + 10.0
    while buckets.acquire(key, POLICY, at, INTERACTIVE).granted:
        pass  # reservations up to the interactive horizon
    assert not buckets.acquire(key, POLICY, at, bulk("a")).granted
    grant = buckets.acquire(key, POLICY, at, bulk("a"))
    assert grant.granted
    assert LANE_HORIZON_S < grant.wait_s <= LANE_HORIZON_S + POLICY.horizon_s
    assert not buckets.acquire(key, POLICY, at, INTERACTIVE).granted


def test_two_tenants_share_bulk_and_the_first_gives_it_back(buckets: Any) -> None:
    """Tenant b starts 10 s after a: while both run they get 50/50 (+-10 %); when a stops,
    b gets the whole rate at once."""
    got = drive(buckets, [Callers(bulk("a"), 8, 0, 40), Callers(bulk("b"), 4, 10)], 60)
    a, b = (_within(t, 12, 40) for t in got)
    assert a / (a + b) == pytest.approx(0.5, abs=0.05)
    assert a + b == pytest.approx(28 * POLICY.rate_per_s, rel=0.03)
    assert _within(got[1], 40.5, 60) == pytest.approx(19.5 * POLICY.rate_per_s, rel=0.05)


def test_tenant_weights_share_bulk_two_to_one(buckets: Any) -> None:
    """Weights 2 and 1: 2:1 of the creates (+-10 %) while both run."""
    got = drive(buckets, [Callers(bulk("a", 2.0), 8), Callers(bulk("b"), 8)], 40)
    a, b = (_within(t, 5, 40) for t in got)
    assert a / b == pytest.approx(2.0, rel=0.1)


def test_both_stores_grant_the_same_tokens(redis_url: str) -> None:
    """Memory and Redis answer one mixed run ask for ask (the Lua is the Python)."""
    groups = [
        Callers(INTERACTIVE, 3, 5, 25),
        Callers(bulk("a", 2.0), 4),
        Callers(bulk("b"), 2, 8, 30),
        Callers(None, 1, 0, 10),
    ]
    redis_store = RedisBucketStore(
        make_redis(load_settings({"redis_url": redis_url}, env_file=None))
    )
    memory = drive(MemoryBucketStore(), groups, 40)
    scripted = drive(redis_store, groups, 40)
    assert [len(t) for t in scripted] == [len(t) for t in memory]
    for ours, theirs in zip(scripted, memory, strict=True):
        assert ours == pytest.approx(theirs, abs=1e-6)
