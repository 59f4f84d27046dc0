"""One token bucket for the whole fleet, adaptive on 429: the algorithm and its two stores.

The algorithm is a pure function of the bucket's state, its policy and the time
(:func:`acquire`, :func:`penalize`). :class:`MemoryBucketStore` runs it in this process;
:class:`RedisBucketStore` runs the same steps in ``bucket.lua``, atomically, on Redis's own
clock, so every worker on every host shares one bucket. One contract test runs both.

* Refill: ``rate`` tokens a second, at most ``burst`` kept.
* A caller that finds no token *reserves* the next one when it comes within ``horizon_s``
  (tokens go below zero) and sleeps until then; beyond that it is told how long to wait.
  Reservations space calls exactly ``1/rate`` apart: no herd of sleepers racing for a token.
* Lanes and fair shares (:mod:`htap_sync.worker.bucket_lanes`): an ask may name its lane and
  tenant, which decide how far ahead it may reserve (interactive first, bulk's minimum
  share, weighted round-robin between tenants); an ask without one is first come first served.
* A 429 halves the effective rate (at most once per ``cooldown_s``), empties the bucket and
  blocks it for ``Retry-After``. Every ``increase_interval_s`` without a 429 the rate grows by
  ``increase_step_per_s``, back up to the configured rate (additive increase).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import cast

import redis

from htap_sync.common.limits import bucket_lanes
from htap_sync.common.limits.bucket_lanes import LaneAsk, LaneState
from htap_sync.common.limits.memory_state import MemoryStates
from htap_sync.common.scripts import script


@dataclass(frozen=True)
class BucketPolicy:
    """How one bucket behaves. Rates in calls per second."""

    rate_per_s: float
    burst: int
    horizon_s: float = 1.0
    min_rate_per_s: float = 0.1
    decrease_factor: float = 0.5
    cooldown_s: float = 1.0
    increase_step_per_s: float = 0.0  # 0: a tenth of rate_per_s
    increase_interval_s: float = 5.0

    @property
    def step_per_s(self) -> float:
        """The additive increase per interval."""
        return self.increase_step_per_s or self.rate_per_s / 10


@dataclass(frozen=True)
class BucketState:
    """A bucket at one moment."""

    tokens: float
    updated: float
    rate: float
    raised: float  # when the rate last changed (increase timer)
    lowered: float  # when the rate was last lowered (cooldown timer)
    blocked_until: float
    lanes: LaneState = field(default_factory=LaneState)


@dataclass(frozen=True)
class Grant:
    """The answer to a request for a token.

    ``granted`` with ``wait_s`` > 0: a token is reserved ``wait_s`` from now; sleep, then call.
    Not ``granted``: nothing reserved; ask again in ``wait_s``.
    """

    granted: bool
    wait_s: float


def fresh(policy: BucketPolicy, now: float) -> BucketState:
    """A full bucket at the configured rate."""
    return BucketState(float(policy.burst), now, policy.rate_per_s, now, -math.inf, 0.0)


def _advance(state: BucketState, policy: BucketPolicy, now: float) -> BucketState:
    rate, raised = state.rate, state.raised
    if rate < policy.rate_per_s and now - raised >= policy.increase_interval_s:
        steps = math.floor((now - raised) / policy.increase_interval_s)
        rate = min(policy.rate_per_s, rate + steps * policy.step_per_s)
        raised += steps * policy.increase_interval_s
    rate = min(rate, policy.rate_per_s)  # the configured rate may have been lowered
    elapsed = max(0.0, now - state.updated)
    tokens = min(float(policy.burst), state.tokens + elapsed * rate)
    return replace(state, tokens=tokens, updated=max(now, state.updated), rate=rate, raised=raised)


def acquire(
    state: BucketState | None, policy: BucketPolicy, now: float, lane: LaneAsk | None = None
) -> tuple[BucketState, Grant]:
    """Take (or reserve) one token; ``lane`` decides how far ahead the ask may reserve."""
    current = _advance(state or fresh(policy, now), policy, now)
    if now < current.blocked_until:
        return current, Grant(False, current.blocked_until - now)
    reach, virtual, lanes = policy.horizon_s, 0.0, current.lanes
    if lane is not None:
        lanes, reach, virtual = bucket_lanes.horizon(lanes, lane, policy.horizon_s, now)
    if current.tokens >= 1:
        grant = Grant(True, 0.0)
    else:
        wait = (1 - current.tokens) / current.rate
        if wait <= reach:
            grant = Grant(True, wait)
        elif lane is not None and lane.lane == "bulk":
            # A bulk ask refused for its place comes back no sooner than a horizon.
            grant = Grant(False, max(wait, policy.horizon_s))
        else:
            grant = Grant(False, wait)
    if lane is not None:
        lanes = bucket_lanes.after(lanes, lane, virtual, now, grant.granted)
        current = replace(current, lanes=lanes)
    if grant.granted:
        current = replace(current, tokens=current.tokens - 1)
    return current, grant


def penalize(
    state: BucketState | None, policy: BucketPolicy, now: float, retry_after_s: float | None
) -> BucketState:
    """A 429 arrived: slow down (once per cooldown), empty the bucket, honour Retry-After."""
    current = _advance(state or fresh(policy, now), policy, now)
    rate, lowered, raised = current.rate, current.lowered, current.raised
    if now - lowered >= policy.cooldown_s:
        rate = max(policy.min_rate_per_s, rate * policy.decrease_factor)
        lowered = raised = now
    blocked = max(current.blocked_until, now + (retry_after_s or 0.0))
    return replace(
        current,
        tokens=min(current.tokens, 0.0),
        rate=rate,
        lowered=lowered,
        raised=raised,
        blocked_until=blocked,
    )


class MemoryBucketStore(MemoryStates[BucketState]):
    """Buckets in this process (one worker, tests). Thread-safe."""

    def acquire(
        self, key: str, policy: BucketPolicy, now: float | None = None, lane: LaneAsk | None = None
    ) -> Grant:
        """Take or reserve a token of bucket ``key``."""
        at = self.now(now)
        return self.update(key, lambda state: acquire(state, policy, at, lane))

    def penalize(
        self, key: str, policy: BucketPolicy, now: float | None, retry_after_s: float | None
    ) -> None:
        """Record a 429 on bucket ``key``."""
        at = self.now(now)
        self.update(key, lambda state: (penalize(state, policy, at, retry_after_s), None))


# bucket.lua's ARGV count (start.lua reads its slice by it: common/tickets/layouts.py).
ARGC = 11


def script_args(
    policy: BucketPolicy,
    now: float | None,
    op: str,
    retry_after_s: float = 0.0,
    lane: LaneAsk | None = None,
) -> list[str | int | float]:
    """The ``ARGV`` of ``bucket.lua`` (here and where another script runs it as a function);
    an ``acquire`` with a lane sends the ask in the place of the retry-after."""
    return [
        "" if now is None else repr(now),
        policy.rate_per_s,
        policy.burst,
        policy.horizon_s,
        policy.min_rate_per_s,
        policy.decrease_factor,
        policy.cooldown_s,
        policy.step_per_s,
        policy.increase_interval_s,
        op,
        lane.spec() if lane is not None and op == "acquire" else retry_after_s,
    ]


class RedisBucketStore:
    """Buckets in Redis, shared by every worker process on every host.

    Args:
        client: a ``decode_responses=True`` redis-py client.
    """

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._script = script(client, __name__, "bucket.lua")

    @property
    def client(self) -> redis.Redis:
        """The Redis this store keeps its state on."""
        return self._redis

    def _run(
        self,
        key: str,
        policy: BucketPolicy,
        now: float | None,
        op: str,
        retry_after_s: float,
        lane: LaneAsk | None = None,
    ) -> Grant:
        args = script_args(policy, now, op, retry_after_s, lane)
        granted, wait = cast(list[str | int], self._script(keys=[key], args=args))
        return Grant(bool(int(granted)), float(wait))

    def acquire(
        self, key: str, policy: BucketPolicy, now: float | None = None, lane: LaneAsk | None = None
    ) -> Grant:
        """Take or reserve a token; ``now`` None uses Redis's clock (one clock for all hosts)."""
        return self._run(key, policy, now, "acquire", 0.0, lane)

    def penalize(
        self, key: str, policy: BucketPolicy, now: float | None, retry_after_s: float | None
    ) -> None:
        """Record a 429."""
        self._run(key, policy, now, "penalize", retry_after_s or 0.0)

    def state(self, key: str) -> BucketState | None:
        """The bucket as last written (for operators)."""
        h = cast(dict[str, str], self._redis.hgetall(key))
        if not h:
            return None
        return BucketState(
            tokens=float(h["tokens"]),
            updated=float(h["updated"]),
            rate=float(h["rate"]),
            raised=float(h["raised"]),
            lowered=float(h["lowered"]),
            blocked_until=float(h["blocked_until"]),
            lanes=_lane_state(h),
        )


def _lane_state(h: dict[str, str]) -> LaneState:
    """The lanes' fields of a bucket's hash (absent: no laned ask came yet)."""
    tenants = tuple(
        sorted(
            (name[2:], float(value), float(h.get(f"a:{name[2:]}", 0)))
            for name, value in h.items()
            if name.startswith("v:")
        )
    )
    return LaneState(
        interactive=float(h.get("si", 0)),
        bulk=float(h.get("sb", 0)),
        decayed=float(h.get("st", 0)),
        bulk_waiting_until=float(h.get("bw", 0)),
        tenants=tenants,
    )
