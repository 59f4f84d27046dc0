"""Rate precision with N workers: our global limit against Celery's built-in ``rate_limit``.

Both post create calls to the same in-process simulator under a backlog; the simulator records
when each call arrived. Printed figures are ratios to the configured rate, measured in this run.

    python -m bench.rate [--requests 100] [--rate 10] [--workers 1 2 4]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

from celery import Celery

from bench.fixtures import (
    INSTANCE,
    PROJECT,
    TOKEN,
    child_env,
    our_env,
    request,
    settings_from_env,
)
from htap_sync.devstack import RedisServer, Service, wait_until
from htap_sync.producer.api import Producer
from htap_sync.simulator import SimulatorConfig, SimulatorServer, max_in_window, observed_rate
from htap_sync.worker.api.client import replication_path


def _measure(sim: SimulatorServer, before: int, count: int, timeout_s: float) -> list[float]:
    wait_until(lambda: sim.state.created >= before + count, timeout_s=timeout_s, what="run")
    return sim.state.create_call_times()[before:]


def run_ours(
    redis_url: str, sim: SimulatorServer, workers: int, n: int, rate: float, logs: Path
) -> list[float]:
    """Our workers (threads, concurrency 4 each) under one global bucket."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    env = our_env(redis_url, sim.url, prefix, rate_per_s=rate, burst=max(1, int(rate / 2)))
    producer = Producer(settings_from_env(env))
    for i in range(n):
        producer.enqueue(request(f"{prefix.replace('-', '_')}_{i:04d}"))
    producer.close()
    before = sim.state.created
    procs = [
        Service(
            f"ours-{workers}-{i}",
            [sys.executable, "-m", "htap_sync", "worker", "--concurrency", "4"],
            env=child_env(env),
            log_dir=logs,
        )
        for i in range(workers)
    ]
    try:
        return _measure(sim, before, n, timeout_s=n / rate * 3 + 60)
    finally:
        for p in procs:
            p.stop()


def run_celery(
    redis_url: str, sim: SimulatorServer, workers: int, n: int, rate: float, logs: Path
) -> list[float]:
    """Bare Celery workers with ``rate_limit``, default settings, under a backlog."""
    queue = f"bare-{uuid.uuid4().hex[:8]}"
    app = Celery("bench_send", broker=redis_url, set_as_current=False)
    app.conf.task_serializer = "json"
    for i in range(n):
        body = request(f"{queue.replace('-', '_')}_{i:04d}")
        body = {k: v for k, v in body.items() if k not in ("project_id", "instance_id")}
        app.send_task(
            "bench.bare_create", args=[replication_path(PROJECT, INSTANCE), body], queue=queue
        )
    app.close()
    before = sim.state.created
    env = child_env(
        {
            "BENCH_REDIS_URL": redis_url,
            "BENCH_ENDPOINT": sim.url,
            "BENCH_TOKEN": TOKEN,
            "BENCH_RATE": f"{rate:g}/s",
        }
    )
    procs = [
        Service(
            f"celery-{workers}-{i}",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "bench.celery_bare",
                "worker",
                "-Q",
                queue,
                "--loglevel",
                "WARNING",
                "-n",
                f"bare{i}-{queue}@%h",
            ],
            env=env,
            log_dir=logs,
        )
        for i in range(workers)
    ]
    try:
        return _measure(sim, before, n, timeout_s=n / rate * 3 + 120)
    finally:
        for p in procs:
            p.stop()


def main(argv: list[str] | None = None) -> int:
    """Run both, print one table of ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-rate-") as tmp:
        logs = Path(tmp)
        redis_server = RedisServer(logs).wait_ready()
        try:
            with SimulatorServer(SimulatorConfig(token=TOKEN)) as sim:
                for workers in args.workers:
                    for name, run in (("htap-sync", run_ours), ("celery rate_limit", run_celery)):
                        started = time.monotonic()
                        times = run(redis_server.url, sim, workers, args.requests, args.rate, logs)
                        burst = max(1, int(args.rate / 2))
                        rows.append(
                            (
                                workers,
                                name,
                                observed_rate(times) / args.rate,
                                observed_rate(times[burst:]) / args.rate,
                                max_in_window(times, 1.0),
                                time.monotonic() - started,
                            )
                        )
        finally:
            redis_server.stop()
    print(f"configured rate {args.rate:g}/s, {args.requests} requests per run, backlog first")
    header = ("workers", "limiter", "achieved/configured", "after burst", "max in 1 s", "wall s")
    print("{:>7}  {:<18} {:>19} {:>11} {:>10} {:>7}".format(*header))
    for workers, name, ratio, steady, peak, wall in rows:
        print(f"{workers:>7}  {name:<18} {ratio:>19.2f} {steady:>11.2f} {peak:>10d} {wall:>7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
