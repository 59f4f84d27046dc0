"""Run the soak's scenarios in sequence, print one table, write it to SOAK.md; exit 1 when a
hard guarantee broke (a ticket lost, a task created twice, a failure whose task exists).

``python -m bench.soak [--sentinel] [--only batched single outage throttle] [--output PATH]``
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.soak.fleet import BURST, CONCURRENCY, RATE_PER_S, WORKERS
from bench.soak.measure import Row
from bench.soak.run import FOLLOW_GRACE_S, progress, run
from bench.soak.scenarios import CREATE_FAULTS, LIFECYCLE, REDIS_DOWN_S, SCENARIOS, SENTINEL
from bench.soak.table import markdown


def header(total_s: float) -> list[str]:
    """What ran, on which settings: the lines above the table."""
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return [
        "# Soak (`make soak`)",
        "",
        f"Run {started}, {total_s:.0f} s in all. Each scenario has a fleet of its own: a"
        f" redis-server with AOF (appendfsync everysec), the simulator (`htap-sync simulator"
        f" {' '.join(LIFECYCLE)}`, plus `{' '.join(CREATE_FAULTS)}` in scenarios 1, 2 and 5),"
        f" {WORKERS} `htap-sync worker --concurrency {CONCURRENCY}` processes, and a producer"
        " (`Producer.enqueue_many` for the batched path, `Producer.enqueue` for the single).",
        "",
        "Settings: the README's defaults (rate limit HTAP_SYNC_RATE_LIMIT_PER_S="
        f"{RATE_PER_S:g} with burst {BURST}, batch size 16, visibility timeout 300 s, follow"
        " interval 10 s, first look 5 s, breaker 20 failures / 30 s); only the key prefix and"
        " queue are the scenario's own. Faults: scenarios 1 and 2 SIGKILL a worker at 30 % of"
        " tickets done or 40 s after submission, whichever comes first (a replacement starts"
        f" at once), and kill -9 Redis at 60 % or 75 s (down {REDIS_DOWN_S:.0f} s, back from"
        " its AOF); 3 answers every create 500 for 20 s from 15 % or 8 s; 5 (`--sentinel`)"
        " fails a master + replica + 3 sentinels over at 40 % or 50 s and 70 % or 90 s."
        f" Follow deadline: {FOLLOW_GRACE_S:.0f} s after the last ticket is done; each"
        " scenario gives up waiting after its own cap (see its notes).",
    ]


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios; print and write the table; 1 if a hard guarantee broke."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sentinel", action="store_true", help="add the Sentinel scenario")
    keys = [s.key for s in (*SCENARIOS, SENTINEL)]
    parser.add_argument("--only", nargs="+", choices=keys, help="run only these scenarios")
    parser.add_argument("--output", type=Path, default=Path("SOAK.md"))
    parser.add_argument("--rows", type=int, help="rows per scenario, for a quick try")
    args = parser.parse_args(argv)
    chosen = [*SCENARIOS, SENTINEL] if args.sentinel else list(SCENARIOS)
    if args.only:
        chosen = [s for s in (*SCENARIOS, SENTINEL) if s.key in args.only]
    if args.rows:
        chosen = [dataclasses.replace(s, rows=args.rows) for s in chosen]
    logs = Path(tempfile.mkdtemp(prefix="htap-soak-"))
    progress(f"logs of every process: {logs}")
    started = time.monotonic()
    rows: list[Row] = [run(scenario, logs) for scenario in chosen]
    report = markdown(rows, header=header(time.monotonic() - started))
    print(report, flush=True)
    args.output.write_text(report)
    progress(f"wrote {args.output}; logs in {logs}")
    return 1 if any(row.broken() for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
