"""Enqueue-to-result latency at light load, against the simulator's own latency."""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from bench.fixtures import our_env, request, settings_from_env, simulator, tag
from bench.procs import created, our_worker
from bench.report import Row, Table, print_alone, progress
from htap_sync.common.models import TicketState
from htap_sync.devstack import wait_until
from htap_sync.producer.api import Producer


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile: the smallest value with ``pct`` % of them at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def run(
    redis_url: str,
    logs: Path,
    *,
    requests: int = 100,
    per_s: float = 5.0,
    latency_ms: int = 50,
    concurrency: int = 16,
) -> list[Table]:
    """Pace the requests, wait for every ticket, report p50/p99 against ``latency_ms``."""
    prefix = tag("lat")
    returned: dict[str, float] = {}
    with simulator(latency_ms) as sim:
        # The default rate limit (10/s, burst 10): at 5/s it never holds a call back.
        env = our_env(redis_url, sim.url, prefix, rate_per_s=10.0, burst=10)
        producer = Producer(settings_from_env(env))
        worker = our_worker(prefix, env, logs, concurrency=concurrency)
        try:
            producer.enqueue(request(f"{prefix}_warm"))
            target = sim.state.created + 1
            wait_until(lambda: created(sim, worker, target), timeout_s=60, what="warm-up")
            progress(f"latency: {requests} requests at {per_s:g}/s, simulator {latency_ms} ms")
            started = time.monotonic()
            for i in range(requests):
                time.sleep(max(0.0, started + i / per_s - time.monotonic()))
                receipt = producer.enqueue(request(f"{prefix}_{i:05d}"))
                returned[receipt.ticket] = time.time()
            statuses = producer.wait(list(returned), timeout_s=60, poll_s=0.1)
        finally:
            worker.stop()
            producer.close()
    done = [s for s in statuses.values() if s.state is TicketState.SUCCEEDED]
    if len(done) != requests:
        raise RuntimeError(f"only {len(done)} of {requests} tickets succeeded")
    total_ms = [(s.updated_at.timestamp() - returned[s.ticket]) * 1000 for s in done]
    base = f"simulator latency ({latency_ms} ms)"
    rows = [
        Row("enqueue → succeeded, p50", percentile(total_ms, 50), "ms", base, latency_ms),
        Row("enqueue → succeeded, p99", percentile(total_ms, 99), "ms", base, latency_ms),
        Row("enqueue → succeeded, max", max(total_ms), "ms", base, latency_ms),
    ]
    setup = (
        f"{requests} requests, each enqueued alone with `Producer.enqueue`, {per_s:g} per"
        f" second, to one warmed-up worker (threads, concurrency {concurrency}, default rate"
        f" limit 10/s with burst 10); the simulator answers after {latency_ms} ms. Latency runs"
        " from `Producer.enqueue` returning to the ticket's `updated_at` once it succeeded"
        " (stamped by the worker on this host, to the millisecond); nearest-rank percentiles."
        f" The ratio is"
        f" the latency in multiples of the simulator's {latency_ms} ms: 1.00 would be no"
        " overhead at all. Lower is better."
    )
    return [Table("Enqueue-to-result latency at light load", setup, rows)]


def main(argv: list[str] | None = None) -> int:
    """Run this benchmark alone and print its table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--per-second", type=float, default=5.0)
    args = parser.parse_args(argv)
    return print_alone(
        "latency", lambda url, logs: run(url, logs, requests=args.requests, per_s=args.per_second)
    )


if __name__ == "__main__":
    sys.exit(main())
