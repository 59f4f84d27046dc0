"""Worker footprint: CPU seconds per 1000 tasks and resident memory, against bare Celery."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from statistics import median

from celery import Celery

from bench.fixtures import INSTANCE, PROJECT, request, simulator, tag
from bench.procs import SETTLE_S, Usage, bare_worker, created, usage
from bench.report import Row, Table, print_alone, progress, spread
from bench.throughput import OurRun, run_ours
from htap_sync.devstack import wait_until
from htap_sync.simulator import SimulatorServer, observed_rate
from htap_sync.worker.client import replication_path

BARE_RATE = "100000/s"
MIB = 1024 * 1024


def run_bare(
    redis_url: str,
    sim: SimulatorServer,
    logs: Path,
    *,
    requests: int,
    concurrency: int,
    pool: str = "threads",
) -> tuple[float, Usage]:
    """N posts through one warmed-up bare Celery worker: tasks/s and what it used."""
    queue = tag("bare")
    app = Celery("bench_send", broker=redis_url, set_as_current=False)
    app.conf.task_serializer = "json"
    path = replication_path(PROJECT, INSTANCE)

    def send(name: str) -> None:
        body = {k: v for k, v in request(name).items() if k not in ("project_id", "instance_id")}
        app.send_task("bench.bare_create", args=[path, body], queue=queue)

    worker = bare_worker(
        queue,
        redis_url=redis_url,
        endpoint=sim.url,
        queue=queue,
        rate=BARE_RATE,
        logs=logs,
        concurrency=concurrency,
        pool=pool,
    )
    try:
        send(f"{queue}_warm")
        target = sim.state.created + 1
        wait_until(lambda: created(sim, worker, target), timeout_s=60, what="warm-up")
        before_times = len(sim.state.create_call_times())
        target = sim.state.created + requests
        start = usage(worker.process.pid)
        for i in range(requests):
            send(f"{queue}_{i:05d}")
        wait_until(
            lambda: created(sim, worker, target), timeout_s=60 + requests / 5, what="the run"
        )
        time.sleep(SETTLE_S)
        spent = usage(worker.process.pid) - start
        return observed_rate(sim.state.create_call_times()[before_times:]), spent
    finally:
        worker.stop()
        app.close()


def _alternate(
    redis_url: str,
    sim: SimulatorServer,
    logs: Path,
    *,
    requests: int,
    pool: str,
    concurrency: int,
    repeat: int,
) -> tuple[list[OurRun], list[tuple[float, Usage]]]:
    """``repeat`` runs of ours and of bare Celery, alternated, on one (pool, concurrency)."""
    label = f"{pool} pool, concurrency {concurrency}"
    per_k = 1000 / requests
    ours: list[OurRun] = []
    bare: list[tuple[float, Usage]] = []
    for attempt in range(repeat):
        progress(f"footprint, {label}, run {attempt + 1} of {repeat}")
        ours.append(
            run_ours(redis_url, sim, logs, requests=requests, concurrency=concurrency, pool=pool)
        )
        bare.append(
            run_bare(redis_url, sim, logs, requests=requests, concurrency=concurrency, pool=pool)
        )
        progress(
            f"  CPU s/1000 tasks: ours {ours[-1].usage.cpu_s * per_k:.2f},"
            f" bare {bare[-1][1].cpu_s * per_k:.2f}"
        )
    return ours, bare


def _rows(
    name: str, ours: list[OurRun], bare: list[tuple[float, Usage]], per_k: float
) -> tuple[list[Row], Row]:
    """The CPU and throughput rows, and the memory row, of one (pool, concurrency)."""
    mine_cpu = [r.usage.cpu_s * per_k for r in ours]
    bare_cpu = [u.cpu_s * per_k for _, u in bare]
    mine_rss = [r.usage.rss_bytes / MIB for r in ours]
    bare_rss = [u.rss_bytes / MIB for _, u in bare]
    mine_rate = [r.per_s for r in ours]
    bare_rate = [rate for rate, _ in bare]
    cpu = Row(
        name,
        median(mine_cpu),
        "CPU s",
        "bare Celery task, same pool",
        median(bare_cpu),
        spread(mine_cpu, bare_cpu),
    )
    rate = Row(
        name,
        median(mine_rate),
        "tasks/s",
        "bare Celery task, same pool",
        median(bare_rate),
        "throughput of the same runs; " + spread(mine_rate, bare_rate),
    )
    rss = Row(
        name,
        median(mine_rss),
        "MiB",
        "bare Celery worker, same pool",
        median(bare_rss),
        spread(mine_rss, bare_rss),
    )
    return [cpu, rate], rss


def _tables(cpu_rows: list[Row], rss_rows: list[Row], *, requests: int, repeat: int) -> list[Table]:
    """The CPU and memory tables, with how they were measured."""
    setup = (
        f"{requests} tasks per run at 0 ms simulator latency, after one warm-up task; both"
        " workers run with `--without-gossip --without-mingle`, log level WARNING. Ours:"
        " `Producer.enqueue_many`, rate limit 100000/s. Bare: `bench.celery_bare`, `rate_limit`"
        f" {BARE_RATE}. Medians of {repeat} runs, ours and bare alternated."
    )
    cpu = Table(
        "CPU seconds per 1000 tasks",
        setup + " CPU is user + system of the worker process and its pool children, from the"
        " first task queued until every ticket is recorded. Lower ratio is better.",
        cpu_rows,
        [
            "Ours does per task what the bare task does not: validate the message, claim the"
            " ticket (Lua), take a token from the fleet bucket (Lua), check the breaker, mark"
            " the ticket in doubt, record the outcome with its history, keep its watchdog"
            " entry and count it in the metrics. The bare task only POSTs.",
        ],
    )
    rss = Table(
        "Worker memory",
        setup + " RSS of the worker process and its pool children after the run. Lower ratio"
        " is better.",
        rss_rows,
    )
    return [cpu, rss]


def run(
    redis_url: str,
    logs: Path,
    *,
    requests: int = 400,
    pools: tuple[tuple[str, int], ...] = (("threads", 16), ("prefork", 4)),
    repeat: int = 3,
) -> list[Table]:
    """Ours and bare Celery, alternated, for each (pool, concurrency); CPU and memory tables."""
    cpu_rows: list[Row] = []
    rss_rows: list[Row] = []
    with simulator(0) as sim:
        for pool, concurrency in pools:
            ours, bare = _alternate(
                redis_url,
                sim,
                logs,
                requests=requests,
                pool=pool,
                concurrency=concurrency,
                repeat=repeat,
            )
            name = f"htap-sync worker, {pool} pool, concurrency {concurrency}"
            cpu_and_rate, rss = _rows(name, ours, bare, 1000 / requests)
            cpu_rows.extend(cpu_and_rate)
            rss_rows.append(rss)
    return _tables(cpu_rows, rss_rows, requests=requests, repeat=repeat)


def main(argv: list[str] | None = None) -> int:
    """Run this benchmark alone and print its tables."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    return print_alone(
        "footprint", lambda url, logs: run(url, logs, requests=args.requests, repeat=args.repeat)
    )


if __name__ == "__main__":
    sys.exit(main())
