"""Run every benchmark, print its tables and write BENCHMARKS.md: ``python -m bench``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench import (
    commands,
    enqueue,
    follow,
    ingress,
    lanes,
    latency,
    operations,
    precision,
    scripts,
    throughput,
)
from bench.report import Benchmark, Table, as_text, document, on_fresh_redis, progress

# Each gets a redis-server of its own, so no run sees another's keys or queue.
BENCHMARKS: dict[str, Benchmark] = {
    "throughput": lambda url, logs: throughput.run(url, logs),
    "commands": lambda url, logs: commands.run(url, logs),
    "enqueue": lambda url, logs: enqueue.run(url, logs),
    "precision": lambda url, logs: precision.run(url, logs),
    "latency": lambda url, logs: latency.run(url, logs),
    "follow": lambda url, logs: follow.run(url, logs),
    "operations": lambda url, logs: operations.run(url, logs),
    "scripts": lambda url, logs: scripts.run(url, logs),
    "ingress": lambda url, logs: ingress.run(url, logs),
    "lanes": lambda url, logs: lanes.run(url, logs),
}

INTRO = [
    "Every figure is a ratio to a reference measured in the same run on the machine below:"
    " `ratio = value / reference value`, and each table says which way is better. Everything"
    " runs on loopback: a throwaway redis-server per benchmark, the simulator in the"
    " benchmark's process, workers and raw clients as processes of their own.",
    "",
    "Where a table states a goal (issue 14), its goal column says whether this run met it."
    " Sizes are trimmed so that `make bench` stays under about 8 minutes on 2 cores: 800"
    " tickets per worker run where the issue measured 2,000, 3 rounds, and the threads pool"
    " only (the prefork pool's footprint is no longer measured).",
]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks in order; write the report unless only some ran."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--only", nargs="+", choices=list(BENCHMARKS), help="run these (no report is written)"
    )
    parser.add_argument("--output", type=Path, default=Path("BENCHMARKS.md"))
    args = parser.parse_args(argv)
    started = time.monotonic()
    tables: list[Table] = []
    for name, benchmark in BENCHMARKS.items():
        if args.only and name not in args.only:
            continue
        progress(f"--- {name}")
        for table in on_fresh_redis(name, benchmark):
            tables.append(table)
            print(as_text(table) + "\n", flush=True)
    total_s = time.monotonic() - started
    progress(f"all done in {total_s:.0f} s")
    if not args.only:
        args.output.write_text(document(tables, total_s=total_s, intro=INTRO))
        progress(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
