"""Moves due tickets from the durable delayed set back into the queue (a thread per worker)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import redis

from htap_sync.common.broker_queue import Taken
from htap_sync.common.tickets.claim_types import ALIVE_TTL_S, PROBE_S
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

    It also looks for messages a worker took and never started (``taken``: kombu's unacked
    set): a live worker starts what it takes at once (it takes no more than it has threads
    for), so a message taken ``unstarted_s`` ago whose tickets no live delivery holds was
    taken by a process that died (SIGKILL) before starting it. Each such ticket is sent again now,
    not after the broker's visibility timeout; ``once`` lets one mover of the fleet look at
    each message. A duplicate (the taker was alive after all) is dropped by the ticket
    store's claim.

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
        taken: the messages taken before a time (epoch s) and not acknowledged
            (:meth:`BrokerQueue.taken_before`); None: no such look.
        once: True for the first mover of the fleet to ask about a message's tag.
        unstarted_s: how long after it was taken a message whose tickets no live delivery
            holds counts as held by a dead process (the heartbeat's lifetime).
        clock: the time (epoch s).
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
        taken: Callable[[float], list[Taken]] | None = None,
        once: Callable[[str], bool] = lambda tag: True,
        unstarted_s: float = ALIVE_TTL_S,
        clock: Callable[[], float] = time.time,
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
        self._taken = taken
        self._once = once
        self._unstarted_s = unstarted_s
        self._clock = clock
        self._looked: set[str] = set()  # tags of taken messages this mover already asked about

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
                # Its new message may yet be lost (a Redis crash between a worker's pop and its
                # unacked record, a taker killed): like a submission, the ticket keeps a
                # watchdog, which a delivery's start moves on and its end removes; after a
                # Redis restart it is brought forward. A duplicate is dropped by the claim.
                self._delayed.postpone(due, self._watch_s)
                continue
            self._delayed.release(due)
        return moved + self.send_unstarted()

    def send_unstarted(self) -> int:
        """Send again the unfinished tickets no live delivery holds of messages taken
        ``unstarted_s`` ago and not acknowledged (their taker died); returns how many."""
        if self._taken is None:
            return 0
        stale = self._taken(self._clock() - self._unstarted_s)
        self._looked &= {taken.tag for taken in stale}
        sent = 0
        for taken in stale:
            if taken.tag in self._looked:
                continue
            self._looked.add(taken.tag)
            if not self._once(taken.tag):
                continue
            for ticket, run in taken.tickets:
                pending = self._store.pending_request(ticket, run)
                if pending is not None and pending[0] != "held":
                    self._send(ticket, run, pending[1])
                    sent += 1
        if sent:
            log.warning("%d tickets of messages taken and never started sent again", sent)
        return sent

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
            except Exception:  # anything else (a broker's error, a bug): never die of it
                # A mover that died left the tickets it had claimed to the others' looks,
                # and its process without the watch that restarts it after a Redis restart.
                log.exception("delayed mover: look failed; looking again")
                wait = None
            else:
                if server is not None and current != server and not self._recover():
                    current = server  # keep the old run id: recover again at the next look
                server = current
            pause = self._interval_s if wait is None else min(max(wait, 0.01), self._interval_s)
            self._stop.wait(pause)
