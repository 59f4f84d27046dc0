"""In-process storage of per-key state under a lock: the memory store of bucket and breaker."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

S = TypeVar("S")
R = TypeVar("R")


class MemoryStates(Generic[S]):
    """States by key, changed by pure functions under one lock (one process: a worker, tests).

    Args:
        clock: the time used when a call passes ``now=None``.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._states: dict[str, S] = {}

    def now(self, now: float | None) -> float:
        """``now``, or the clock's time when it is None."""
        return self._clock() if now is None else now

    def update(
        self, key: str, change: Callable[[S | None], tuple[S, R]], *, absent: S | None = None
    ) -> R:
        """Replace the state of ``key`` by what ``change`` makes of it; return its answer.

        A key without a state that would get ``absent`` (the state a missing key means) stays
        without one, as a Redis store writes nothing when nothing changes.
        """
        with self._lock:
            before = self._states.get(key)
            after, answer = change(before)
            if before is not None or absent is None or after != absent:
                self._states[key] = after
            return answer

    def state(self, key: str) -> S | None:
        """The state as last written."""
        with self._lock:
            return self._states.get(key)
