"""A worker process's heartbeat: beats before any claim can name it, then on and on."""

from __future__ import annotations

import threading

from htap_sync.worker.threads import Heartbeat


class Beats:
    """Counts beats; the second one releases the test."""

    def __init__(self) -> None:
        self.beats: list[tuple[str, float]] = []
        self.again = threading.Event()

    def beat(self, node: str, ttl_s: float) -> None:
        self.beats.append((node, ttl_s))
        if len(self.beats) >= 2:
            self.again.set()


def test_the_first_beat_is_made_by_start_then_the_thread_goes_on() -> None:
    """start() beats at once (a claim made right after names a live process), then the
    thread beats every ``every_s``; stop() ends it."""
    store = Beats()
    heart = Heartbeat(store, "node1", every_s=0.01, ttl_s=10.0)
    heart.start()
    try:
        assert store.beats[0] == ("node1", 10.0)
        assert store.again.wait(5.0)
    finally:
        heart.stop()


def test_a_failed_beat_never_ends_the_thread() -> None:
    """Redis away: the beat fails, is logged, and the next one is tried."""

    class Flaky(Beats):
        def beat(self, node: str, ttl_s: float) -> None:
            super().beat(node, ttl_s)
            if len(self.beats) == 2:
                raise ConnectionError("Redis away")

    store = Flaky()
    done = threading.Event()
    original = store.beat

    def counting(node: str, ttl_s: float) -> None:
        try:
            original(node, ttl_s)
        finally:
            if len(store.beats) >= 3:
                done.set()

    store.beat = counting  # type: ignore[method-assign]
    heart = Heartbeat(store, "node1", every_s=0.01, ttl_s=10.0)
    heart.start()
    try:
        assert done.wait(5.0)  # a third beat came after the failed second
    finally:
        heart.stop()
