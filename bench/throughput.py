"""Ours against the bare Celery task and raw clients, alternated, at 0 ms and 50 ms.

One loop makes every figure of four tables, so that each ratio compares runs made in turns
under the same load: end-to-end throughput (against C / latency and raw HTTP clients), the
batched path against the single path, and (in ``bench.footprint``) CPU per ticket and memory.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from statistics import median

from bench import footprint
from bench.clients import CLIENTS, Client, run_client
from bench.fixtures import simulator, tag
from bench.report import Goal, Row, Table, print_alone, progress, spread
from bench.runs import (
    BARE_BACKEND,
    BATCH,
    BATCHED,
    BURST,
    KINDS,
    RATE_PER_S,
    SINGLE,
    Results,
    Run,
    run_bare,
    run_ours,
)
from htap_sync.simulator import SimulatorServer, observed_rate

LATENCIES_MS = (0, 50)
# Issue 14 measured 2,000 tasks per run; 800 keeps `make bench` under about 8 minutes.
REQUESTS = 800
LABELS: dict[Client, str] = {
    "aiohttp": "aiohttp",
    "httpx-async": "httpx.AsyncClient",
    "httpx-threads": "httpx.Client, C threads",
}
CEILING_GOAL = Goal(">=", 0.9)
BATCH_GOAL = Goal(">=", 4.0)


def _one_worker(
    kind: str, redis_url: str, sim: SimulatorServer, logs: Path, requests: int, concurrency: int
) -> Run:
    if kind in (SINGLE, BATCHED):
        batch = 1 if kind == SINGLE else BATCH
        return run_ours(
            redis_url, sim, logs, requests=requests, concurrency=concurrency, batch_size=batch
        )
    return run_bare(
        redis_url,
        sim,
        logs,
        requests=requests,
        concurrency=concurrency,
        result_backend=kind == BARE_BACKEND,
    )


def _round(
    results: Results, latency_ms: int, redis_url: str, sim: SimulatorServer, logs: Path, n: int
) -> None:
    """One run of each worker kind, then of each raw client, all with 16 in flight."""
    figures = []
    for kind in KINDS:
        one = _one_worker(kind, redis_url, sim, logs, n, results.concurrency)
        results.runs.setdefault((latency_ms, kind), []).append(one)
        figures.append(f"{kind} {one.per_s:.0f}/s {one.cpu_ms_per_task:.2f} CPU ms")
    for client in CLIENTS:
        prefix = tag(client.replace("-", "_"))
        times = run_client(client, sim, requests=n, concurrency=results.concurrency, prefix=prefix)
        results.clients.setdefault((latency_ms, client), []).append(observed_rate(times))
        figures.append(f"{client} {observed_rate(times):.0f}/s")
    progress("  " + "; ".join(figures))


def measure(redis_url: str, logs: Path, *, requests: int, concurrency: int, repeat: int) -> Results:
    """``repeat`` rounds at each latency, each on one simulator."""
    results = Results(concurrency)
    for latency_ms in LATENCIES_MS:
        with simulator(latency_ms) as sim:
            for attempt in range(repeat):
                progress(f"throughput at {latency_ms} ms, round {attempt + 1} of {repeat}")
                _round(results, latency_ms, redis_url, sim, logs, requests)
    return results


def _rates(runs: list[Run]) -> list[float]:
    return [r.per_s for r in runs]


def _throughput_rows(results: Results, latency_ms: int) -> list[Row]:
    """One latency's throughput: against the ceiling, the worker's own CPU, the clients."""
    at = f"{latency_ms} ms"
    c = results.concurrency
    rows: list[Row] = []
    refs = {k: results.clients[latency_ms, k] for k in CLIENTS}
    for kind in (SINGLE, BATCHED):
        mine = _rates(results.of(latency_ms, kind))
        name = f"{kind}, {c} threads, {at}"
        if latency_ms > 0:
            ceiling = c / (latency_ms / 1000)
            rows.append(
                Row(
                    name,
                    median(mine),
                    "/s",
                    f"ceiling C / latency ({c} / {at})",
                    ceiling,
                    spread(mine),
                    goal=CEILING_GOAL,
                )
            )
        cpu_bound = [r.tasks / r.usage.cpu_s for r in results.of(latency_ms, kind) if r.usage.cpu_s]
        rows.append(
            Row(
                name,
                median(mine),
                "/s",
                "its own CPU: tasks per CPU second",
                median(cpu_bound),
                "near 1: bound by its CPU; " + spread(mine, cpu_bound),
            )
        )
    mine = _rates(results.of(latency_ms, SINGLE))
    name = f"{SINGLE}, {c} threads, {at}"
    rows += [
        Row(name, median(mine), "/s", f"{LABELS[k]}, {at}", median(v), spread(mine, v))
        for k, v in refs.items()
    ]
    if latency_ms > 0:
        ceiling = c / (latency_ms / 1000)
        rows += [
            Row(
                f"{LABELS[k]}, {at}",
                median(v),
                "/s",
                f"ceiling C / latency ({c} / {at})",
                ceiling,
                spread(v),
            )
            for k, v in refs.items()
        ]
    return rows


def throughput_table(results: Results, requests: int, repeat: int) -> Table:
    """End-to-end throughput through the simulator."""
    rows = [row for ms in LATENCIES_MS for row in _throughput_rows(results, ms)]
    setup = (
        f"{requests} requests per run, queued with `Producer.enqueue_many`; one worker process"
        f" (threads pool, concurrency C = {results.concurrency}, log level WARNING), rate limit"
        f" {RATE_PER_S:g}/s with burst {BURST} so that it never holds a call back. Single path:"
        f" `HTAP_SYNC_BATCH_SIZE=1`; batched path: `HTAP_SYNC_BATCH_SIZE={BATCH}`, for the"
        " producer and the worker. Tasks/s is (N - 1) / (last - first create call) as the"
        " simulator saw them, after one warm-up task. The raw clients post the same"
        f" {requests} create calls to the same simulator with C calls in flight, each in a"
        f" process of its own. Medians of {repeat} rounds; in each round every worker kind"
        " and client runs once, in turn. Higher ratio is better."
    )
    notes = [
        "On 2 cores the worker, redis-server and the simulator share the CPU: at 0 ms every"
        " figure is CPU-bound, and the clients' own CPU cost per call decides their order.",
        "`httpx.Client, C threads` is how our worker uses httpx (one sync client per process"
        " shared by the pool's threads), without Celery, Redis or the rate limit.",
        f"The goal (issue 14): at 50 ms with {results.concurrency} calls in flight, at least"
        " 0.9 of the ceiling C / latency.",
    ]
    return Table("End-to-end throughput through the simulator", setup, rows, notes)


def batched_table(results: Results, requests: int, repeat: int) -> Table:
    """Tickets/s of the batched path against the single path, at each latency."""
    rows = []
    for ms in LATENCIES_MS:
        batched = _rates(results.of(ms, BATCHED))
        single = _rates(results.of(ms, SINGLE))
        rows.append(
            Row(
                f"batched path (batch size {BATCH}), {ms} ms",
                median(batched),
                "tickets/s",
                f"single path (batch size 1), {ms} ms",
                median(single),
                spread(batched, single),
                goal=BATCH_GOAL,
            )
        )
    setup = (
        f"The runs of the throughput table: {requests} tickets per run through one worker"
        f" (threads pool, concurrency {results.concurrency}), `HTAP_SYNC_BATCH_SIZE={BATCH}`"
        " against `HTAP_SYNC_BATCH_SIZE=1`, set for the producer (`enqueue_many` groups that"
        f" many tickets per message) and the worker. Medians of {repeat} rounds, alternated."
        " Higher ratio is better."
    )
    notes = [
        "Where the product has no batched path, both runs take the single path and the ratio"
        " is near 1."
    ]
    return Table("Batched path against the single path", setup, rows, notes)


def run(
    redis_url: str, logs: Path, *, requests: int = REQUESTS, concurrency: int = 16, repeat: int = 3
) -> list[Table]:
    """Every kind of worker and the raw clients, alternated; four tables."""
    results = measure(redis_url, logs, requests=requests, concurrency=concurrency, repeat=repeat)
    return [
        throughput_table(results, requests, repeat),
        batched_table(results, requests, repeat),
        *footprint.tables(results, requests=requests, repeat=repeat),
    ]


def main(argv: list[str] | None = None) -> int:
    """Run this benchmark alone and print its tables."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=REQUESTS)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    return print_alone(
        "throughput",
        lambda url, logs: run(
            url, logs, requests=args.requests, concurrency=args.concurrency, repeat=args.repeat
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
