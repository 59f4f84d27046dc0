"""Background threads a worker process runs beside Celery (the mover, the follower, the
heartbeat)."""

from __future__ import annotations

import logging
import threading
from typing import Protocol

log = logging.getLogger("htap_sync.worker")


class BackgroundLoop:
    """Runs :meth:`_loop` in a daemon thread until :meth:`stop`; subclasses wait on ``_stop``.

    Args:
        name: the thread's name (it shows in stack dumps).
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _loop(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        """Start the background thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the thread and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None


class Beats(Protocol):
    """Where a process says it lives (a ticket store: ``ClaimStore.beat``)."""

    def beat(self, node: str, ttl_s: float) -> None: ...


class Heartbeat(BackgroundLoop):
    """Says every ``every_s`` that this worker process (``node``) lives for ``ttl_s`` more.

    The claims the process takes name it: once it stops beating (killed), other workers take
    its tickets over without waiting for their leases or the broker's visibility timeout.
    The first beat is made by :meth:`start` itself, before any claim can name the node.
    """

    def __init__(self, store: Beats, node: str, *, every_s: float, ttl_s: float) -> None:
        super().__init__("heartbeat")
        self._store = store
        self._node = node
        self._every_s = every_s
        self._ttl_s = ttl_s

    def start(self) -> None:
        """Beat once now (Redis errors pass up: a worker that cannot beat cannot claim
        either), then go on in the background."""
        self._store.beat(self._node, self._ttl_s)
        super().start()

    def _loop(self) -> None:
        while not self._stop.wait(self._every_s):
            try:
                self._store.beat(self._node, self._ttl_s)
            except Exception as exc:  # Redis away: beat again next time, never die
                log.warning("heartbeat: %s", exc)
