"""One circuit breaker for the whole fleet: the algorithm and its two stores.

Sustained server failures (5xx, timeouts, refused connections) open it for every worker:
while it is open, tickets wait instead of hammering a failing API and spending attempts.
After ``cooldown_s`` it half-opens and lets ``probes`` calls through; that many successes
close it, one failure opens it again; while they are out, other calls look again within a
second (:data:`HALF_OPEN_RECHECK_S`), so a closing breaker lets the fleet go at once. Probes
that never report back (a worker died) are given out again after ``probe_timeout_s``.

As with the bucket, the transitions are pure functions; :class:`MemoryBreakerStore` runs them
in-process and :class:`RedisBreakerStore` runs the same steps atomically in ``breaker.lua``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, cast

import redis

from htap_sync.common.limits.memory_state import MemoryStates
from htap_sync.common.scripts import script

State = Literal["closed", "open", "half_open"]
# While its probes are out, the breaker tells other calls to look again this soon (at most),
# not when the probes would time out: a probe answers within a call's time, and the breaker
# closing must let the fleet go at once (breaker.lua has the same number).
HALF_OPEN_RECHECK_S = 1.0


@dataclass(frozen=True)
class BreakerPolicy:
    """When the breaker opens and how it closes."""

    threshold: int = 20
    cooldown_s: float = 30.0
    probes: int = 3
    probe_timeout_s: float = 60.0


@dataclass(frozen=True)
class BreakerState:
    """A breaker at one moment."""

    state: State = "closed"
    failures: int = 0  # consecutive, while closed
    open_until: float = 0.0
    granted: int = 0  # probes handed out while half open
    successes: int = 0  # probe successes while half open
    half_open_at: float = 0.0
    opened: int = 0  # how many times it opened (for operators)


def allow(
    state: BreakerState | None, policy: BreakerPolicy, now: float
) -> tuple[BreakerState, float]:
    """May a call go out? Returns the new state and 0 (yes) or the seconds to wait."""
    s = state or BreakerState()
    if s.state == "open":
        if now < s.open_until:
            return s, s.open_until - now
        s = replace(s, state="half_open", granted=0, successes=0, half_open_at=now)
    if s.state == "half_open":
        if s.granted >= policy.probes and now - s.half_open_at < policy.probe_timeout_s:
            left = policy.probe_timeout_s - (now - s.half_open_at)
            return s, max(0.1, min(left, HALF_OPEN_RECHECK_S))
        if s.granted >= policy.probes:  # the probes never reported: hand them out again
            s = replace(s, granted=0, half_open_at=now)
        return replace(s, granted=s.granted + 1), 0.0
    return s, 0.0


def record(state: BreakerState | None, policy: BreakerPolicy, now: float, ok: bool) -> BreakerState:
    """Count the outcome of a call that went out."""
    s = state or BreakerState()
    if s.state == "closed":
        if ok:
            return replace(s, failures=0)
        failures = s.failures + 1
        if failures < policy.threshold:
            return replace(s, failures=failures)
        return BreakerState("open", 0, now + policy.cooldown_s, 0, 0, 0.0, s.opened + 1)
    if s.state == "half_open":
        if not ok:
            return BreakerState("open", 0, now + policy.cooldown_s, 0, 0, 0.0, s.opened + 1)
        if s.successes + 1 >= policy.probes:
            return BreakerState("closed", opened=s.opened)
        return replace(s, successes=s.successes + 1)
    return s  # open: late answers of calls sent before it opened change nothing


class MemoryBreakerStore(MemoryStates[BreakerState]):
    """Breakers in this process (one worker, tests). Thread-safe."""

    def allow(self, key: str, policy: BreakerPolicy, now: float | None = None) -> float:
        """0 when a call may go out, else the seconds to wait."""
        at = self.now(now)
        return self.update(key, lambda state: allow(state, policy, at), absent=BreakerState())

    def record(self, key: str, policy: BreakerPolicy, now: float | None, ok: bool) -> None:
        """Count a call's outcome."""
        at = self.now(now)
        self.update(key, lambda state: (record(state, policy, at, ok), None), absent=BreakerState())


# breaker.lua's ARGV count (start.lua and finish.lua read their slice by it).
ARGC = 6


def script_args(policy: BreakerPolicy, now: float | None, op: str) -> list[str | int | float]:
    """The ``ARGV`` of ``breaker.lua`` (here and where another script runs it as a function);
    ``op`` is ``allow``, ``ok`` or ``fail``."""
    return [
        "" if now is None else repr(now),
        policy.threshold,
        policy.cooldown_s,
        policy.probes,
        policy.probe_timeout_s,
        op,
    ]


class RedisBreakerStore:
    """Breakers in Redis, shared by every worker process on every host."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._script = script(client, __name__, "breaker.lua")

    @property
    def client(self) -> redis.Redis:
        """The Redis this store keeps its state on."""
        return self._redis

    def _run(self, key: str, policy: BreakerPolicy, now: float | None, op: str) -> float:
        args = script_args(policy, now, op)
        return float(cast(str, self._script(keys=[key], args=args)))

    def allow(self, key: str, policy: BreakerPolicy, now: float | None = None) -> float:
        """0 when a call may go out, else the seconds to wait (None: Redis's clock)."""
        return self._run(key, policy, now, "allow")

    def record(self, key: str, policy: BreakerPolicy, now: float | None, ok: bool) -> None:
        """Count a call's outcome."""
        self._run(key, policy, now, "ok" if ok else "fail")

    def state(self, key: str) -> BreakerState | None:
        """The breaker as last written (for operators)."""
        h = cast(dict[str, str], self._redis.hgetall(key))
        if not h:
            return None
        return BreakerState(
            state=cast(State, h["state"]),
            failures=int(float(h["failures"])),
            open_until=float(h["open_until"]),
            granted=int(float(h["granted"])),
            successes=int(float(h["successes"])),
            half_open_at=float(h["half_open_at"]),
            opened=int(float(h["opened"])),
        )
