"""Bulk enqueue: ``Producer.enqueue_many`` against a plain ``apply_async`` loop (``bench.bulk``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench import bulk
from bench.report import Row, Table, print_alone, progress


def run(redis_url: str, logs: Path, *, requests: int = 5000, repeat: int = 3) -> list[Table]:
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
        )
    ]
    setup = (
        f"{requests} requests per run, best of {repeat} runs of each (alternated), on one"
        " throwaway redis-server; the loop sends the same create messages with no validation"
        " and no ticket. Higher ratio is better."
    )
    return [Table("Bulk enqueue", setup, rows)]


def main(argv: list[str] | None = None) -> int:
    """Run this benchmark alone and print its table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    return print_alone(
        "enqueue", lambda url, logs: run(url, logs, requests=args.requests, repeat=args.repeat)
    )


if __name__ == "__main__":
    sys.exit(main())
