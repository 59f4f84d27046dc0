"""Bulk enqueue: ``Producer.enqueue_many`` against a plain ``apply_async`` loop (``bench.bulk``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench import bulk
from bench.report import Goal, Row, Table, print_alone, progress

REQUESTS = 10_000
GOAL = Goal(">=", 8.0)


def run(redis_url: str, logs: Path, *, requests: int = REQUESTS, repeat: int = 3) -> list[Table]:
    """Best seconds of each way over ``repeat`` alternated runs; throughput and ratio."""
    loop_s: list[float] = []
    ours_s: list[float] = []
    for attempt in range(repeat):
        progress(f"bulk enqueue: {requests} requests, run {attempt + 1} of {repeat}")
        loop_s.append(bulk.plain_loop(redis_url, requests))
        ours_s.append(bulk.ours(redis_url, requests))
    rows = [
        Row(
            "Producer.enqueue_many",
            requests / min(ours_s),
            "requests/s",
            "plain apply_async loop",
            requests / min(loop_s),
            note="validated, ticketed, deduplicated",
            goal=GOAL,
        )
    ]
    setup = (
        f"{requests} requests per run, best of {repeat} runs of each (alternated), on one"
        " throwaway redis-server; the loop sends the same create messages with no validation"
        " and no ticket. `enqueue_many` runs with the product's default"
        " `HTAP_SYNC_BATCH_SIZE`. Higher ratio is better."
    )
    notes = [
        f"The goal (issue 14): {requests:,} validated rows at least 8 times as fast as the loop."
    ]
    return [Table("Bulk enqueue", setup, rows, notes)]


def main(argv: list[str] | None = None) -> int:
    """Run this benchmark alone and print its table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=REQUESTS)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    return print_alone(
        "enqueue", lambda url, logs: run(url, logs, requests=args.requests, repeat=args.repeat)
    )


if __name__ == "__main__":
    sys.exit(main())
