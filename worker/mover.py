"""Moves due tickets from the durable delayed set back into the queue (a thread per worker)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import redis

from common.delayed import DelayedSet
from common.store import TicketStore

log = logging.getLogger("htap_sync.mover")

Send = Callable[[str, str, dict[str, Any]], None]


class DelayedMover:
    """Every ``interval_s``, claims due tickets, queues a fresh message for each, releases them.

    Every worker process runs one; claims keep them from sending the same member twice, and a
    duplicate that slips through (a mover dying between send and release) is dropped by the
    ticket store's claim.

    Args:
        delayed: the delayed set.
        store: the ticket store, which holds each ticket's request.
        send: queues one message ``(ticket, run, request)``.
        interval_s: the longest pause between two looks.
    """

    def __init__(
        self, delayed: DelayedSet, store: TicketStore, send: Send, *, interval_s: float = 0.5
    ) -> None:
        self._delayed = delayed
        self._store = store
        self._send = send
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """Move what is due now; returns how many messages were queued."""
        moved = 0
        for due in self._delayed.claim_due():
            request = self._store.pending_request(due.ticket, due.run)
            if request is not None:
                self._send(due.ticket, due.run, request)
                moved += 1
            self._delayed.release(due)
        return moved

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
                wait = self._delayed.next_due_in_s()
            except redis.RedisError as exc:  # Redis restarting: keep trying, never die
                log.warning("delayed set unavailable: %s", exc)
                wait = None
            pause = self._interval_s if wait is None else min(max(wait, 0.01), self._interval_s)
            self._stop.wait(pause)

    def start(self) -> None:
        """Start the background thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="delayed-mover", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the thread and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
