"""The gateway's own flow control: one token bucket per project on the create call.

The real API gateway limits calls per API and per user/project (by default 200 calls/s per
API, taurus-api.md section 4) and answers 429 ``APIGW.0308`` beyond it. Here a bucket holds up
to ``burst`` tokens, starts full, refills at ``per_s`` tokens a second, and every admitted call
takes one token: over any time span ``T`` a project gets at most ``burst + per_s * T`` calls,
so never more than ``per_s + burst`` in any one-second window.

The limit can change while the simulator runs (``RateLimiter.set_limit``): each bucket is first
refilled at the old rate up to that moment, then capped to the new burst, and refills at the
new rate from then on. Lowering the limit thus never hands out a fresh burst; raising it does
not either (the extra room fills in at the new rate). Removing the limit forgets the buckets,
and a bucket first seen under a limit starts full.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

# Seconds from an arbitrary start, never going back (time.monotonic by default).
Monotonic = Callable[[], float]

# Refill arithmetic in floats: 10 calls/s for 0.7 - 0.6 s is 0.9999999999999998 tokens, which
# is meant to be one token.
_TOKEN_TOLERANCE = 1e-9


@dataclass(frozen=True)
class RateLimit:
    """A limit in force: ``per_s`` calls a second with bursts of up to ``burst`` calls.

    Raises:
        ValueError: ``per_s`` is not a finite number > 0, or ``burst`` not an integer >= 1.
    """

    per_s: float
    burst: int

    def __post_init__(self) -> None:
        _check(self.per_s, self.burst, ("per_s", "burst"))
        # RateLimit(200, 200) equals RateLimit(200.0, 200) either way; store the float.
        object.__setattr__(self, "per_s", float(self.per_s))

    @classmethod
    def of(
        cls,
        per_s: float | None,
        burst: int | None = None,
        *,
        names: tuple[str, str] = ("per_s", "burst"),
    ) -> RateLimit | None:
        """Return the limit, or None (no limit) when ``per_s`` is None.

        Args:
            per_s: Calls a second; None means no limit.
            burst: Bucket size; None means ``max(1, ceil(per_s))``.
            names: How to name ``per_s`` and ``burst`` in error messages.

        Raises:
            ValueError: A value is out of range, or ``burst`` is set without ``per_s``; the
                message starts with the name of the field at fault.
        """
        if per_s is None:
            if burst is not None:
                raise ValueError(f"{names[1]}: needs {names[0]} to be set")
            return None
        _check(per_s, 1 if burst is None else burst, names)
        return cls(per_s, max(1, math.ceil(per_s)) if burst is None else burst)

    @property
    def text(self) -> str:
        """``per_s`` as the gateway's message writes it: ``200``, or ``0.5`` if fractional."""
        return str(int(self.per_s)) if self.per_s.is_integer() else repr(self.per_s)


def _check(per_s: object, burst: object, names: tuple[str, str]) -> None:
    if (
        not isinstance(per_s, (int, float))
        or isinstance(per_s, bool)
        or not math.isfinite(per_s)
        or per_s <= 0
    ):
        raise ValueError(f"{names[0]}: must be a finite number > 0 or None")
    if not isinstance(burst, int) or isinstance(burst, bool) or burst < 1:
        raise ValueError(f"{names[1]}: must be an integer >= 1 or None")


@dataclass(frozen=True)
class Admission:
    """The limiter's answer for one call.

    Attributes:
        admitted: True if the call may go on; False means answer 429.
        at: The limiter's clock when the call was decided (its arrival time).
        retry_after_s: When throttled, whole seconds until a token is back (at least 1);
            0 when admitted.
        limit: The limit the call was checked against; None when there is none.
    """

    admitted: bool
    at: float
    retry_after_s: int = 0
    limit: RateLimit | None = None


@dataclass
class _Bucket:
    tokens: float
    updated: float

    def refill(self, now: float, limit: RateLimit) -> None:
        # A clock injected by a test may stand still or even step back: no negative refill.
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(float(limit.burst), self.tokens + elapsed * limit.per_s)
        self.updated = max(now, self.updated)


class RateLimiter:
    """Token buckets keyed by project id; thread-safe, with a limit that can change any time."""

    def __init__(self, limit: RateLimit | None = None, *, clock: Monotonic | None = None) -> None:
        """Start with ``limit`` (None: admit everything) and no buckets.

        Args:
            limit: The limit in force at first.
            clock: Monotonic seconds; defaults to ``time.monotonic`` (tests inject one).
        """
        self._lock = threading.Lock()
        self._limit = limit
        self._clock: Monotonic = clock or time.monotonic
        self._buckets: dict[str, _Bucket] = {}

    @property
    def clock(self) -> Monotonic:
        """The monotonic clock the limiter reads (seconds)."""
        return self._clock

    @property
    def limit(self) -> RateLimit | None:
        """The limit in force, None when calls are not limited."""
        with self._lock:
            return self._limit

    def set_limit(self, per_s: float | None, burst: int | None = None) -> RateLimit | None:
        """Change the limit from now on (see the module docstring); safe from any thread.

        Args:
            per_s: Calls a second per project; None removes the limit.
            burst: Bucket size; None means ``max(1, ceil(per_s))``.

        Returns:
            The limit now in force.

        Raises:
            ValueError: Out of range (see ``RateLimit.of``); the limit stays as it was.
        """
        new = RateLimit.of(per_s, burst)
        with self._lock:
            old, self._limit = self._limit, new
            if new is None or old is None:
                self._buckets.clear()
                return new
            now = self._clock()
            for bucket in self._buckets.values():
                bucket.refill(now, old)
                bucket.tokens = min(bucket.tokens, float(new.burst))
            return new

    def admit(self, key: str) -> Admission:
        """Decide one call of ``key`` (a project id) now, taking a token if it is admitted."""
        with self._lock:
            now = self._clock()
            limit = self._limit
            if limit is None:
                return Admission(admitted=True, at=now)
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(float(limit.burst), now)
            bucket.refill(now, limit)
            if bucket.tokens >= 1.0 - _TOKEN_TOLERANCE:
                bucket.tokens -= 1.0
                return Admission(admitted=True, at=now, limit=limit)
            wait_s = (1.0 - bucket.tokens) / limit.per_s
            retry_after_s = max(1, math.ceil(wait_s - _TOKEN_TOLERANCE))
            return Admission(admitted=False, at=now, retry_after_s=retry_after_s, limit=limit)
