"""A worker's life beside its tasks: the threads its main process runs (the mover, the
follower), logging and metrics set up by Celery's signals, and the restart after Redis
restarts (stopped for good by an operator's signal)."""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from celery import Celery
from celery.signals import (
    setup_logging,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
    worker_shutting_down,
)
from celery.worker import state

from htap_sync.common.broker_queue import BrokerQueue
from htap_sync.common.connections import make_redis, make_store
from htap_sync.common.fair_feed import BulkFeeder, feed_target, queued_depth, requeue
from htap_sync.common.keys import Keys
from htap_sync.common.logs import configure_logging
from htap_sync.common.settings import Settings
from htap_sync.common.tickets.delayed import DelayedSet
from htap_sync.worker.fleet import fleet_view
from htap_sync.worker.following.follower import Follower
from htap_sync.worker.metrics import FleetCollector, serve_metrics
from htap_sync.worker.mover import DelayedMover
from htap_sync.worker.runtime import Runtime

log = logging.getLogger("htap_sync.worker")


# Set when a signal (SIGTERM, SIGINT, SIGQUIT) asked the worker to stop: it must not restart.
_stopping = threading.Event()


def _stop_asked(**_: Any) -> None:
    _stopping.set()


worker_shutting_down.connect(_stop_asked, weak=False)


def restart_worker(before: Callable[[], None] = lambda: None) -> None:
    """Stop this worker warmly, then start it again in the same process (as SIGHUP does).

    Celery's Redis consumer can miss a Redis restart: when every slot was busy at the time it
    was not listening, and afterwards it may never listen again (seen: a worker idle forever
    with messages in the queue). A fresh start reconnects for sure; messages in flight return
    after the visibility timeout and their tickets, in doubt, are reconciled before any POST.

    ``before`` runs once the tasks in flight have ended, just before the new start. A worker
    told to stop (a signal), before or during the restart, stops instead: a restart must never
    outlive the stop its operator asked for.
    """
    if _stopping.is_set():
        log.warning("Redis restarted while the worker stops: not restarting")
        return
    log.warning("restarting the worker to reconnect to Redis")

    def again() -> None:
        if _stopping.is_set():
            log.warning("the worker was told to stop during its restart: not restarting")
            return
        before()
        # -m htap_sync or the htap-sync script: the command line exactly as it was given.
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])  # noqa: S606

    atexit.register(again)
    state.should_stop = 0  # type: ignore[assignment]  # an exit code; the stubs say None


def _background(app: Celery, settings: Settings, runtime: Runtime) -> list[DelayedMover | Follower]:
    """The threads every worker process's main process runs: the mover and the follower."""

    client = make_redis(settings)
    delayed = DelayedSet(client, key_prefix=settings.key_prefix)
    store = make_store(settings, client)

    def release_abandoned() -> int:
        released = runtime.take_abandoned()
        for ticket, run in released:
            store.release(ticket, run, due_at=time.time())
        return len(released)

    def release_late() -> None:
        # Deliveries still running at the restart may have met the outage since: theirs too.
        try:
            late = release_abandoned()
        except redis.RedisError as exc:
            log.warning("could not release deliveries given up (%s): they wait their lease", exc)
            return
        if late:
            log.warning("%d deliveries given up during the outage released", late)

    def recover() -> None:
        # Redis restarted: tickets this process gave up resume now, the others as soon as
        # their lease ends, not after the watchdog's visibility timeout.
        released = release_abandoned()
        moved = delayed.expedite()
        log.warning("Redis restarted: %d deliveries released, %d tickets woken", released, moved)
        restart_worker(before=release_late)

    keys = Keys(settings.key_prefix)
    broker = BrokerQueue(client, keys, settings.queue)
    looked_s = int(settings.delivery.visibility_timeout_s)

    def once(tag: str) -> bool:
        return bool(client.set(keys.taken_looked(tag), 1, nx=True, ex=looked_s))

    mover = DelayedMover(
        delayed,
        store,
        requeue(app, settings, client),
        on_recovery=recover,
        queue_depth=lambda: queued_depth(client, settings),
        feed=BulkFeeder(client, settings, feed_target(settings, runtime.concurrency)).feed
        if settings.lanes
        else None,
        watch_s=settings.delivery.visibility_timeout_s,
        taken=broker.taken_before,
        once=once,
    )
    threads: list[DelayedMover | Follower] = [mover]
    if settings.following.enabled:
        parts = runtime.get()
        threads.append(
            Follower(
                parts.follow, parts.client, parts.gate, interval_s=settings.following.interval_s
            )
        )
    return threads


def connect_signals(app: Celery, settings: Settings, runtime: Runtime, loglevel: str) -> None:
    """Start and stop the worker's threads, logging and metrics with Celery's signals."""
    threads: list[DelayedMover | Follower] = []

    def _ready(**_: Any) -> None:
        threads.extend(_background(app, settings, runtime))
        for thread in threads:
            thread.start()

    def _close(**_: Any) -> None:
        runtime.close()

    def _shutdown(**_: Any) -> None:
        for thread in threads:
            thread.stop()
        runtime.close()

    def _logging(**_: Any) -> None:
        # Connected, this replaces Celery's own logging set-up with ours (text or JSON).
        configure_logging(settings.observability.log_format, loglevel)

    def _metrics(**_: Any) -> None:
        if settings.observability.metrics_port is not None:
            client = make_redis(settings)
            fleet = FleetCollector(
                lambda: fleet_view(client, settings),
                redis_client=client,
                key_prefix=settings.key_prefix,
            )
            serve_metrics(settings.observability.metrics_port, fleet)

    setup_logging.connect(_logging, weak=False)
    worker_ready.connect(_metrics, weak=False)
    worker_process_shutdown.connect(_child_exit, weak=False)
    worker_ready.connect(_ready, weak=False)
    worker_process_shutdown.connect(_close, weak=False)
    worker_shutdown.connect(_shutdown, weak=False)


def _child_exit(pid: int | None = None, **_: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())  # type: ignore[no-untyped-call]
