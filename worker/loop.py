"""A background thread a worker process runs beside Celery (the mover, the follower)."""

from __future__ import annotations

import threading


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
