"""End-to-end throughput through the simulator: one worker against raw clients and C / latency."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import median

from bench.clients import CLIENTS, Client, run_client
from bench.fixtures import our_settings, request, simulator, tag
from bench.procs import SETTLE_S, Usage, created, our_worker, usage
from bench.report import Row, Table, print_alone, progress, spread
from htap_sync.common.models import TicketState
from htap_sync.devstack import wait_until
from htap_sync.producer.api import Producer
from htap_sync.simulator import SimulatorServer, observed_rate

LATENCIES_MS = (0, 50)
LABELS: dict[Client, str] = {
    "aiohttp": "aiohttp",
    "httpx-async": "httpx.AsyncClient",
    "httpx-threads": "httpx.Client, C threads",
}
# So high that the fleet's rate limit never holds a call back: what is measured is the rest.
RATE_PER_S = 100_000.0
BURST = 10_000


@dataclass(frozen=True)
class OurRun:
    """One run of our worker: tasks/s at the simulator, and the worker's CPU and memory."""

    tasks: int
    per_s: float
    usage: Usage


def run_ours(
    redis_url: str,
    sim: SimulatorServer,
    logs: Path,
    *,
    requests: int,
    concurrency: int,
    pool: str = "threads",
) -> OurRun:
    """N requests through one warmed-up worker; CPU counted from after the warm-up."""
    prefix = tag("ours")
    settings = our_settings(redis_url, sim.url, prefix, rate_per_s=RATE_PER_S, burst=BURST)
    producer = Producer(settings)
    worker = our_worker(prefix, settings, logs, concurrency=concurrency, pool=pool)
    try:
        # One request first: the worker is up, its clients are made, its code paths are hot.
        producer.enqueue(request(f"{prefix}_warm"))
        target = sim.state.created + 1
        wait_until(lambda: created(sim, worker, target), timeout_s=60, what="warm-up")
        before_times = len(sim.state.create_call_times())
        target = sim.state.created + requests
        start = usage(worker.process.pid)
        items = list(producer.enqueue_many(request(f"{prefix}_{i:05d}") for i in range(requests)))
        tickets = [item.ticket for item in items if item.accepted and item.ticket]
        if len(tickets) != requests:
            raise RuntimeError(f"only {len(tickets)} of {requests} requests were queued")
        wait_until(
            lambda: created(sim, worker, target), timeout_s=60 + requests / 5, what="the run"
        )
        # Until every ticket is recorded: the worker's CPU covers the whole task.
        statuses = producer.wait(tickets, timeout_s=30, poll_s=0.02)
        time.sleep(SETTLE_S)
        spent = usage(worker.process.pid) - start
        unfinished = [t for t, s in statuses.items() if s.state is not TicketState.SUCCEEDED]
        if unfinished:
            raise RuntimeError(f"{len(unfinished)} tickets did not succeed")
        times = sim.state.create_call_times()[before_times:]
        return OurRun(tasks=requests, per_s=observed_rate(times), usage=spent)
    finally:
        worker.stop()
        producer.close()


def _rows(
    latency_ms: int, concurrency: int, runs: list[OurRun], refs: dict[Client, list[float]]
) -> list[Row]:
    """One latency's figures: against the ceiling, the worker's own CPU, and the clients."""
    at = f"{latency_ms} ms"
    ours = f"htap-sync worker, {concurrency} threads, {at}"
    mine = [r.per_s for r in runs]
    # What one process could do if its CPU were the only limit: tasks per CPU second.
    cpu_bound = [r.tasks / r.usage.cpu_s for r in runs if r.usage.cpu_s > 0]
    rows: list[Row] = []
    if latency_ms > 0:
        ceiling = concurrency / (latency_ms / 1000)
        name = f"ceiling C / latency ({concurrency} / {at})"
        rows.append(Row(ours, median(mine), "/s", name, ceiling, spread(mine)))
        rows += [
            Row(f"{LABELS[c]}, {at}", median(v), "/s", name, ceiling, spread(v))
            for c, v in refs.items()
        ]
    rows.append(
        Row(
            ours,
            median(mine),
            "/s",
            "its own CPU: tasks per CPU second",
            median(cpu_bound),
            "near 1: bound by its CPU; " + spread(mine, cpu_bound),
        )
    )
    rows += [
        Row(ours, median(mine), "/s", f"{LABELS[c]}, {at}", median(v), spread(mine, v))
        for c, v in refs.items()
    ]
    rows += [
        Row(
            f"{LABELS[c]}, {at}",
            median(v),
            "/s",
            f"aiohttp, {at}",
            median(refs["aiohttp"]),
            spread(v, refs["aiohttp"]),
        )
        for c, v in refs.items()
        if c != "aiohttp"
    ]
    return rows


def run(
    redis_url: str, logs: Path, *, requests: int = 400, concurrency: int = 16, repeat: int = 3
) -> list[Table]:
    """Our worker and the three raw clients, alternated, at each simulator latency."""
    ours: dict[int, list[OurRun]] = {ms: [] for ms in LATENCIES_MS}
    refs: dict[tuple[int, Client], list[float]] = {}
    for latency_ms in LATENCIES_MS:
        with simulator(latency_ms) as sim:
            for attempt in range(repeat):
                progress(f"throughput at {latency_ms} ms, run {attempt + 1} of {repeat}")
                one = run_ours(redis_url, sim, logs, requests=requests, concurrency=concurrency)
                ours[latency_ms].append(one)
                figures = [f"ours {one.per_s:.0f}/s"]
                for client in CLIENTS:
                    times = run_client(
                        client,
                        sim,
                        requests=requests,
                        concurrency=concurrency,
                        prefix=tag(client.replace("-", "_")),
                    )
                    refs.setdefault((latency_ms, client), []).append(observed_rate(times))
                    figures.append(f"{client} {observed_rate(times):.0f}/s")
                progress("  " + ", ".join(figures))
    rows: list[Row] = []
    for latency_ms in LATENCIES_MS:
        rows += _rows(
            latency_ms, concurrency, ours[latency_ms], {c: refs[latency_ms, c] for c in CLIENTS}
        )
    setup = (
        f"{requests} requests per run, queued with `Producer.enqueue_many`; one worker process"
        f" (threads pool, concurrency C = {concurrency}, log level WARNING), rate limit"
        f" {RATE_PER_S:g}/s with burst {BURST} so that it never holds a call back. Tasks/s is"
        " (N - 1) / (last - first create call) as the simulator saw them, after one warm-up"
        f" task. The raw clients post the same {requests} create calls to the same simulator"
        f" with C calls in flight, each in a process of its own. Medians of {repeat} runs,"
        " ours and the clients alternated. Higher ratio is better."
    )
    notes = [
        "On 2 cores the worker, redis-server and the simulator share the CPU: at 0 ms every"
        " figure is CPU-bound, and the clients' own CPU cost per call decides their order.",
        "`httpx.Client, C threads` is how our worker uses httpx (one sync client per process"
        " shared by the pool's threads), without Celery, Redis or the rate limit.",
    ]
    return [Table("End-to-end throughput through the simulator", setup, rows, notes)]


def main(argv: list[str] | None = None) -> int:
    """Run this benchmark alone and print its table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
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
