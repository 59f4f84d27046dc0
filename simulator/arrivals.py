"""Arrival times of create calls, and the two measures a rate-limit test asserts on.

``max_in_window(times, window_s)`` is the largest number of calls in any half-open window
``[t, t + window_s)``: two calls exactly ``window_s`` apart are never in one window, so calls
exactly 1 s apart count 1 per second. Times are compared as ``later - earlier < window_s``.

``observed_rate(times)`` is calls per second between the first and the last call: ``n`` calls
make ``n - 1`` gaps, so it is ``(n - 1) / (last - first)``; 0.0 for fewer than two calls and
``math.inf`` for two or more calls at one instant. A steady caller at ``r`` calls/s thus
measures exactly ``r``, however long the run.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from typing import Any

# More create calls than any test or benchmark makes; at most about 40 MB of floats.
ARRIVALS_CAP = 1_000_000


def max_in_window(times: Iterable[float], window_s: float = 1.0) -> int:
    """Return the largest number of ``times`` in any window ``[t, t + window_s)``.

    Args:
        times: Arrival times in seconds, in any order.
        window_s: Window length in seconds.

    Raises:
        ValueError: ``window_s`` is not > 0.
    """
    if not window_s > 0:
        raise ValueError("window_s: must be > 0")
    ordered = sorted(times)
    best = 0
    start = 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= window_s:
            start += 1
        best = max(best, end - start + 1)
    return best


def observed_rate(times: Iterable[float]) -> float:
    """Return ``(n - 1) / (last - first)`` calls per second (see the module docstring)."""
    values = list(times)
    if len(values) < 2:
        return 0.0
    return _rate(len(values), min(values), max(values))


def _rate(count: int, first: float, last: float) -> float:
    if count < 2:
        return 0.0
    span = last - first
    return (count - 1) / span if span > 0 else math.inf


class _Series:
    """Running count, span and busiest window of one stream of times, over the whole run.

    ``add`` is O(1) amortized, so the stats stay cheap after a million calls, and they keep
    counting the calls the capped log has already forgotten.
    """

    def __init__(self, window_s: float) -> None:
        self._window_s = window_s
        self._window: deque[float] = deque()
        self.count = 0
        self.first = math.inf
        self.last = -math.inf
        self.max_in_window = 0

    def add(self, at: float) -> None:
        self.count += 1
        self.first = min(self.first, at)
        self.last = max(self.last, at)
        window = self._window
        # Two threads may record their calls in the other order than their clock read them:
        # a time older than the newest one counts as the newest (off by a few microseconds).
        if window and at < window[-1]:
            at = window[-1]
        window.append(at)
        while at - window[0] >= self._window_s:
            window.popleft()
        self.max_in_window = max(self.max_in_window, len(window))

    @property
    def rate(self) -> float:
        return _rate(self.count, self.first, self.last)


class ArrivalLog:
    """Create-call arrival times, each with whether the rate limit admitted it.

    Not locked: ``SimulatorState`` calls it under its own lock. Each list of times keeps its
    last ``cap`` calls; ``summary()`` covers the whole run.
    """

    def __init__(self, cap: int = ARRIVALS_CAP) -> None:
        """Start empty, keeping at most ``cap`` times (oldest dropped first)."""
        # Both hold the same float objects: the admitted list costs a pointer per call.
        self._all_times: deque[float] = deque(maxlen=cap)
        self._admitted_times: deque[float] = deque(maxlen=cap)
        self._admitted = _Series(1.0)
        self._all = _Series(1.0)

    def add(self, at: float, *, admitted: bool) -> None:
        """Record one call arriving at ``at``."""
        self._all_times.append(at)
        self._all.add(at)
        if admitted:
            self._admitted_times.append(at)
            self._admitted.add(at)

    def times(self, *, admitted_only: bool = True) -> list[float]:
        """Return the kept arrival times in recording order, only admitted ones by default."""
        return list(self._admitted_times if admitted_only else self._all_times)

    def summary(self) -> dict[str, Any]:
        """Return the whole run's measures (JSON-able: an infinite rate becomes None).

        ``observed_rate`` and ``max_in_1s`` cover admitted calls (what got past the gateway),
        the ``_all`` pair every call the rate limit saw, throttled ones included.
        """
        return {
            "observed_rate": _json_rate(self._admitted.rate),
            "max_in_1s": self._admitted.max_in_window,
            "observed_rate_all": _json_rate(self._all.rate),
            "max_in_1s_all": self._all.max_in_window,
        }


def _json_rate(rate: float) -> float | None:
    return rate if math.isfinite(rate) else None
