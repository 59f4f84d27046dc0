"""Per-process collaborators of the task: one httpx client, one Redis store, one RNG.

Built lazily in the process that uses them (after a prefork fork, never inherited across it)
and closed when the worker process shuts down.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from htap_sync.common.connections import make_redis, make_store
from htap_sync.common.keys import Keys
from htap_sync.common.limits.breaker import RedisBreakerStore
from htap_sync.common.limits.bucket import RedisBucketStore
from htap_sync.common.limits.gate import Gate
from htap_sync.common.settings import Settings
from htap_sync.common.tickets.claim_types import ALIVE_TTL_S, BEAT_EVERY_S
from htap_sync.common.tickets.claims import ClaimStore
from htap_sync.worker.api.aio import EventLoop, LoopTransport, async_transport
from htap_sync.worker.api.auth import make_auth
from htap_sync.worker.api.client import TaurusClient, make_http
from htap_sync.worker.delivery.start import Delivery, no_enroll
from htap_sync.worker.delivery.ticket import Enroll
from htap_sync.worker.following.store import FollowStore, enroller
from htap_sync.worker.threads import Heartbeat

# Connections of the batch client's pool: enough for every ticket of every batch in flight
# (the fleet's rate limit, not the pool, paces the calls).
BATCH_CONNECTIONS = 1000


# Threads of a process that may hold a Redis connection besides its task slots: the mover,
# the follower and its claim keeper, the heartbeat, the metrics exporter, the event loop.
BACKGROUND_CONNECTIONS = 16


def redis_connections(settings: Settings, concurrency: int) -> int:
    """The Redis connections one worker process may hold at once: each task slot may run a
    batch whose tickets off its common path each go on in a thread of their own, plus the
    background threads. redis-py's default pool (100) is smaller than 8 slots x 16."""
    return concurrency * (settings.batch_size + 1) + BACKGROUND_CONNECTIONS


@dataclass
class Collaborators:
    """What one worker process shares between its task executions."""

    http: httpx.Client
    client: TaurusClient
    batch_http: httpx.Client  # the batch task's: calls in flight together on one event loop
    batch_client: TaurusClient
    store: ClaimStore
    rng: random.Random
    gate: Gate
    follow: FollowStore
    enroll: Enroll | None  # None when following is off
    replicas: Callable[[], int]  # replicas that must hold the in-doubt mark before a POST

    def delivery(self, settings: Settings, *, batch: bool = False) -> Delivery:
        """The collaborators of one delivery (a batch's calls go out together on its client)."""
        client = self.batch_client if batch else self.client
        enroll = self.enroll or no_enroll
        return Delivery(
            client, self.store, settings, self.rng, self.gate, time.time, enroll, self.replicas
        )


def replica_target(
    settings: Settings, store: ClaimStore, *, every_s: float = 1.0
) -> Callable[[], int]:
    """How many replicas must acknowledge the in-doubt mark before each create call (and a
    created task's result before it is called finished).

    With sentinels: the configured number, whatever the master sees. A master isolated by a
    failover sees no replica, and a mark or a result it takes would be lost with it: the
    delivery waits instead, as for any Redis outage, until a master with a replica takes it.
    Without sentinels: the configured number capped by the replicas the master has now
    (looked up every ``every_s``), so a lone Redis never waits for a replica it lacks.
    """
    wanted = settings.redis.wait_replicas
    if wanted == 0:
        return lambda: 0
    if settings.redis.sentinel_hosts():
        return lambda: wanted
    seen = {"at": float("-inf"), "count": 0}

    def target() -> int:
        now = time.monotonic()
        if now - seen["at"] >= every_s:
            seen["count"], seen["at"] = store.connected_replicas(), now
        return min(wanted, int(seen["count"]))

    return target


class Runtime:
    """Hands out the current process's collaborators, building them on first use."""

    def __init__(
        self,
        settings: Settings,
        transport: httpx.BaseTransport | None = None,
        *,
        concurrency: int = 8,
    ) -> None:
        self.settings = settings
        self._concurrency = concurrency
        self.concurrency = concurrency  # slots of this worker (the bulk feeder's target)
        self._transport = transport
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._parts: Collaborators | None = None
        self._extra: list[httpx.Client] = []
        self._loop: EventLoop | None = None
        # Deliveries given up because Redis went away mid-way: released when it is back.
        self._abandoned: set[tuple[str, str]] = set()
        self._heartbeat: Heartbeat | None = None

    def get(self) -> Collaborators:
        """This process's collaborators (thread-safe; rebuilt after a fork)."""
        with self._lock:
            if self._parts is None or self._pid != os.getpid():
                client = make_redis(
                    self.settings,
                    max_connections=redis_connections(self.settings, self._concurrency),
                )
                auth, self._extra = make_auth(self.settings, client)
                http = make_http(self.settings, self._transport, auth)
                bridge = self._batch_transport()
                batch_http = make_http(self.settings, bridge, auth)
                together = bridge if isinstance(bridge, LoopTransport) else None
                store = make_store(self.settings, client)
                # Claims name this process; its heartbeat tells the fleet it still lives.
                store.node = uuid.uuid4().hex[:12]
                if self._heartbeat is not None:
                    self._heartbeat.stop(0)
                self._heartbeat = Heartbeat(
                    store, store.node, every_s=BEAT_EVERY_S, ttl_s=ALIVE_TTL_S
                )
                self._heartbeat.start()
                follow = FollowStore(client, Keys(self.settings.key_prefix))
                enroll = enroller(
                    follow,
                    timeout_s=self.settings.following.timeout_s,
                    first_s=self.settings.following.first_s,
                )
                self._parts = Collaborators(
                    http=http,
                    client=TaurusClient(http, language=self.settings.cloud.language),
                    batch_http=batch_http,
                    batch_client=TaurusClient(
                        batch_http, language=self.settings.cloud.language, together=together
                    ),
                    store=store,
                    rng=random.Random(),  # noqa: S311 - jitter, not cryptography
                    gate=Gate(RedisBucketStore(client), RedisBreakerStore(client), self.settings),
                    follow=follow,
                    enroll=enroll if self.settings.following.enabled else None,
                    replicas=replica_target(self.settings, store),
                )
                self._pid = os.getpid()
            return self._parts

    def _batch_transport(self) -> httpx.BaseTransport:
        """The batch client's transport: the given one (tests), else a bridge to a new
        event-loop thread of this process (the old one, if any, died with a fork)."""
        if self._transport is not None:
            return self._transport
        self._loop = EventLoop()
        return LoopTransport(async_transport(max_connections=BATCH_CONNECTIONS), self._loop)

    def abandon(self, ticket: str, run: str) -> None:
        """Remember a delivery this process gave up when Redis was unreachable."""
        with self._lock:
            self._abandoned.add((ticket, run))

    def take_abandoned(self) -> list[tuple[str, str]]:
        """The deliveries given up so far, forgotten once taken."""
        with self._lock:
            taken, self._abandoned = sorted(self._abandoned), set()
            return taken

    def close(self) -> None:
        """Close the HTTP client of this process, if it made one."""
        with self._lock:
            if self._parts is not None and self._pid == os.getpid():
                self._parts.http.close()
                self._parts.batch_http.close()
                if self._loop is not None:
                    self._loop.close()
                    self._loop = None
                for extra in self._extra:
                    extra.close()
            if self._heartbeat is not None:
                self._heartbeat.stop(0)
                self._heartbeat = None
            self._parts = None
