"""One run of N tasks through one warmed-up worker, ours or the bare Celery task.

Both measure the same things the same way: tasks/s as the simulator saw the create calls, and
the worker's CPU (user + system, pool children included) from the first task queued until
the last result is stored, plus its memory after the run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis
from celery import Celery

from bench.fixtures import INSTANCE, PROJECT, our_env, request, settings_from_env, tag
from bench.procs import SETTLE_S, Usage, bare_worker, created, our_worker, usage
from bench.traffic import RedisTraffic, Traffic
from htap_sync.common.models import TicketState
from htap_sync.devstack import Service, wait_until
from htap_sync.producer.api import Producer
from htap_sync.simulator import SimulatorServer, observed_rate
from htap_sync.worker.api.client import replication_path

# So high that no rate limit ever holds a call back: what is measured is the rest.
RATE_PER_S = 100_000.0
BURST = 10_000
BARE_RATE = "100000/s"
POLL_S = 0.02
# HTAP_SYNC_BATCH_SIZE of the batched path (the single path is 1).
BATCH = 16


@dataclass(frozen=True)
class Run:
    """One run: tasks/s at the simulator, and the worker's CPU and memory over the run."""

    tasks: int
    per_s: float
    usage: Usage
    redis: RedisTraffic | None = None

    @property
    def cpu_ms_per_task(self) -> float:
        """Worker CPU milliseconds per task (ticket)."""
        return self.usage.cpu_s * 1000 / self.tasks


# The worker kinds of one round, in the order they run.
SINGLE = "ours, single path"
BATCHED = "ours, batched path"
BARE_BACKEND = "bare, Redis result backend"
BARE = "bare, no result backend"
KINDS = (SINGLE, BATCHED, BARE_BACKEND, BARE)


@dataclass
class Results:
    """Every run of every kind at every latency, in the order they ran, at one concurrency."""

    concurrency: int
    runs: dict[tuple[int, str], list[Run]] = field(default_factory=dict)
    clients: dict[tuple[int, str], list[float]] = field(default_factory=dict)

    def of(self, latency_ms: int, kind: str) -> list[Run]:
        """The runs of ``kind`` at ``latency_ms``."""
        return self.runs[latency_ms, kind]


def _warm_up(sim: SimulatorServer, worker: Service, send: Callable[[], object]) -> None:
    """One task first: the worker is up, its clients are made, its code paths are hot."""
    send()
    target = sim.state.created + 1
    wait_until(lambda: created(sim, worker, target), timeout_s=60, what="warm-up")


def run_ours(
    redis_url: str,
    sim: SimulatorServer,
    logs: Path,
    *,
    requests: int,
    concurrency: int,
    batch_size: int | None = 1,
    counts: Path | None = None,
) -> Run:
    """N requests queued with ``enqueue_many`` through one warmed-up worker (threads pool).

    ``batch_size`` is ``HTAP_SYNC_BATCH_SIZE`` for the producer and the worker (1: the single
    path). With ``counts`` the worker's Redis traffic is counted there (``bench.redis_count``).
    """
    prefix = tag("ours")
    env = our_env(
        redis_url, sim.url, prefix, rate_per_s=RATE_PER_S, burst=BURST, batch_size=batch_size
    )
    producer = Producer(settings_from_env(env))
    worker = our_worker(prefix, env, logs, concurrency=concurrency, counts=counts)
    traffic = Traffic(counts, redis_url)
    try:
        _warm_up(sim, worker, lambda: producer.enqueue(request(f"{prefix}_warm")))
        traffic.begin()
        before_times = len(sim.state.create_call_times())
        target = sim.state.created + requests
        start = usage(worker.process.pid)
        with traffic.producing():
            items = list(
                producer.enqueue_many(request(f"{prefix}_{i:05d}") for i in range(requests))
            )
        tickets = [item.ticket for item in items if item.accepted and item.ticket]
        if len(tickets) != requests:
            raise RuntimeError(f"only {len(tickets)} of {requests} requests were queued")
        wait_until(
            lambda: created(sim, worker, target), timeout_s=60 + requests / 5, what="the run"
        )
        # Until every ticket is recorded: the worker's CPU covers the whole task.
        statuses = producer.wait(tickets, timeout_s=30, poll_s=POLL_S)
        time.sleep(SETTLE_S)
        spent = usage(worker.process.pid) - start
        unfinished = [t for t, s in statuses.items() if s.state is not TicketState.SUCCEEDED]
        if unfinished:
            raise RuntimeError(f"{len(unfinished)} tickets did not succeed")
        times = sim.state.create_call_times()[before_times:]
        return Run(requests, observed_rate(times), spent, traffic.end())
    finally:
        traffic.close()
        worker.stop()
        producer.close()


def _stored(client: redis.Redis, ids: list[str]) -> bool:
    """True once the result of every task in ``ids`` is in Celery's Redis backend."""
    keys = [f"celery-task-meta-{i}" for i in ids]
    return int(client.exists(*keys)) == len(keys)


def run_bare(
    redis_url: str,
    sim: SimulatorServer,
    logs: Path,
    *,
    requests: int,
    concurrency: int,
    result_backend: bool,
    counts: Path | None = None,
) -> Run:
    """N posts through one warmed-up bare Celery worker (threads pool), sent one by one.

    With ``result_backend`` each task stores its result in Redis and the run lasts until every
    result is there; without, until the simulator saw every call.
    """
    queue = tag("bare")
    app = Celery("bench_send", broker=redis_url, set_as_current=False)
    app.conf.task_serializer = "json"
    path = replication_path(PROJECT, INSTANCE)
    check = redis.Redis.from_url(redis_url)

    def send(name: str) -> str:
        body = {k: v for k, v in request(name).items() if k not in ("project_id", "instance_id")}
        return str(app.send_task("bench.bare_create", args=[path, body], queue=queue).id)

    worker = bare_worker(
        queue,
        redis_url=redis_url,
        endpoint=sim.url,
        queue=queue,
        rate=BARE_RATE,
        logs=logs,
        concurrency=concurrency,
        result_backend=result_backend,
        counts=counts,
    )
    traffic = Traffic(counts, redis_url)
    try:
        _warm_up(sim, worker, lambda: send(f"{queue}_warm"))
        traffic.begin()
        before_times = len(sim.state.create_call_times())
        target = sim.state.created + requests
        start = usage(worker.process.pid)
        with traffic.producing():
            ids = [send(f"{queue}_{i:05d}") for i in range(requests)]
        wait_until(
            lambda: created(sim, worker, target), timeout_s=60 + requests / 5, what="the run"
        )
        if result_backend:
            wait_until(lambda: _stored(check, ids), timeout_s=30, what="results", interval_s=POLL_S)
        time.sleep(SETTLE_S)
        spent = usage(worker.process.pid) - start
        times = sim.state.create_call_times()[before_times:]
        return Run(requests, observed_rate(times), spent, traffic.end())
    finally:
        traffic.close()
        worker.stop()
        check.close()
        app.close()
