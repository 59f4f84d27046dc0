"""Rate precision with N workers: our fleet-wide limit against Celery's ``rate_limit``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from bench import rate as rate_runs
from bench.fixtures import simulator
from bench.report import Row, Table, print_alone, progress
from htap_sync.simulator import SimulatorServer, max_in_window, observed_rate

Run = Callable[[str, SimulatorServer, int, int, float, Path], list[float]]
LIMITERS: tuple[tuple[str, Run], ...] = (
    ("htap-sync", rate_runs.run_ours),
    ("Celery rate_limit", rate_runs.run_celery),
)


def run(
    redis_url: str,
    logs: Path,
    *,
    requests: int = 60,
    rate: float = 10.0,
    workers: tuple[int, ...] = (1, 2, 4),
) -> list[Table]:
    """Each limiter with each number of workers; rate and busiest second against the limit."""
    burst = max(1, int(rate / 2))  # what bench.rate configures for ours
    rows: list[Row] = []
    with simulator(0) as sim:
        for count in workers:
            for name, run_one in LIMITERS:
                progress(f"rate precision: {name}, {count} worker(s), {requests} calls")
                times = run_one(redis_url, sim, count, requests, rate, logs)
                steady = observed_rate(times[burst:])
                late = observed_rate(times[len(times) // 2 :])
                label = f"{name}, {count} worker{'s' if count > 1 else ''}"
                rows.append(
                    Row(
                        f"{label}: achieved rate",
                        observed_rate(times),
                        "/s",
                        "configured rate",
                        rate,
                        note=f"after the first {burst} calls: {steady / rate:.2f} of it;"
                        f" last half of the calls: {late / rate:.2f}",
                    )
                )
                rows.append(
                    Row(
                        f"{label}: most calls in 1 s",
                        max_in_window(times, 1.0),
                        "calls",
                        "rate + burst",
                        rate + burst,
                    )
                )
    setup = (
        f"Configured rate {rate:g}/s (ours: one bucket in Redis for the fleet, burst {burst};"
        f" Celery: `rate_limit='{rate:g}/s'` on the task). {requests} calls queued before the"
        " workers start (threads, concurrency 4 for ours; Celery's defaults for the bare"
        " worker); measured by the simulator from the first call to the last. A ratio near"
        " 1.00 is right; Celery's limit is per worker, so it multiplies with the workers."
    )
    return [Table("Rate precision with N workers", setup, rows)]


def main(argv: list[str] | None = None) -> int:
    """Run this benchmark alone and print its table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args(argv)
    workers = tuple(args.workers)
    return print_alone(
        "precision",
        lambda url, logs: run(url, logs, requests=args.requests, rate=args.rate, workers=workers),
    )


if __name__ == "__main__":
    sys.exit(main())
