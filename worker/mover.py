"""Moves due tickets from the durable delayed set back into the queue (a thread per worker)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import redis

from htap_sync.common.tickets.claim_types import PROBE_S
from htap_sync.common.tickets.claims import ClaimStore
from htap_sync.common.tickets.delayed import DelayedSet
from htap_sync.worker.threads import BackgroundLoop

log = logging.getLogger("htap_sync.mover")

Send = Callable[[str, str, dict[str, Any]], None]


class DelayedMover(BackgroundLoop):
    """Every ``interval_s``, claims due tickets, queues a fresh message for each, releases them.

    What falls due is a retry's or a purposeful wait's end (sent at once), a running ticket's
    probe (sent only when its holder's process stopped beating or its lease ended: a live
    holder's is looked at again ``PROBE_S`` later), or a queued ticket's watchdog (sent only
    once the queue is empty: its own message is most likely still there).

    Every worker process runs one; claims keep them from sending the same member twice, and a
    duplicate that slips through (a mover dying between send and release) is dropped by the
    ticket store's claim. Its looks double as a watch on Redis: ``on_recovery`` runs when
    Redis has restarted (its ``run_id`` changed), however short the outage was.

    Args:
        delayed: the delayed set.
        store: the ticket store, which holds each ticket's request.
        send: queues one message ``(ticket, run, request)``.
        interval_s: the longest pause between two looks.
        claim_s: how long a look holds what it claimed; a mover that dies between its claim
            and its release leaves those tickets waiting this long for another mover (a
            duplicate send is harmless: the ticket store's claim drops it).
        feed: tops up the bulk queue from the tenants' queues, at each look.
    """

    def __init__(
        self,
        delayed: DelayedSet,
        store: ClaimStore,
        send: Send,
        *,
        interval_s: float = 0.5,
        on_recovery: Callable[[], None] | None = None,
        queue_depth: Callable[[], int] = lambda: 0,
        watch_s: float = 300.0,
        claim_s: float = 5.0,
        feed: Callable[[], int] | None = None,
    ) -> None:
        super().__init__("delayed-mover")
        self._delayed = delayed
        self._store = store
        self._send = send
        self._interval_s = interval_s
        self._on_recovery = on_recovery
        self._queue_depth = queue_depth
        self._watch_s = watch_s
        self._claim_s = claim_s
        self._feed = feed

    def run_once(self) -> int:
        """Move what is due now; returns how many messages were queued. First, top up the
        bulk queue from the tenants' queues (``feed``, common/fair_feed.py)."""
        if self._feed is not None:
            self._feed()
        moved = 0
        depth: int | None = None
        for due in self._delayed.claim_due(claim_s=self._claim_s):
            pending = self._store.pending_request(due.ticket, due.run)
            if pending is not None:
                state, request = pending
                if state == "held":
                    # A live delivery holds it: look whether its process lives a probe later.
                    self._delayed.postpone(due, PROBE_S)
                    continue
                if state == "queued":
                    # A watchdog wake-up for a ticket no worker has taken yet: while the queue
                    # still holds messages, its own is most likely among them; look later.
                    depth = self._queue_depth() if depth is None else depth
                    if depth > 0:
                        self._delayed.postpone(due, self._watch_s)
                        continue
                self._send(due.ticket, due.run, request)
                moved += 1
            self._delayed.release(due)
        return moved

    def _recover(self) -> bool:
        """Run ``on_recovery`` after a Redis restart; False when it met Redis unavailable
        again (a failover's NOREPLICAS): the caller tries again. The mover never dies of it."""
        log.warning("Redis restarted (run_id changed)")
        if self._on_recovery is None:
            return True
        try:
            self._on_recovery()
        except redis.RedisError as exc:
            log.warning("recovery after the Redis restart failed (%s); trying again", exc)
            return False
        return True

    def _loop(self) -> None:
        server: str | None = None  # Redis's run_id: a new one means Redis restarted
        while not self._stop.is_set():
            try:
                self.run_once()
                wait = self._delayed.next_due_in_s()
                current = self._delayed.server_id()
            except redis.RedisError as exc:  # Redis restarting: keep trying, never die
                log.warning("Redis unavailable: %s", exc)
                wait = None
            else:
                if server is not None and current != server and not self._recover():
                    current = server  # keep the old run id: recover again at the next look
                server = current
            pause = self._interval_s if wait is None else min(max(wait, 0.01), self._interval_s)
            self._stop.wait(pause)
