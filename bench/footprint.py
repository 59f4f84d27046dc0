"""Worker footprint: CPU per ticket and resident memory, against the bare Celery task.

The runs are those of ``bench.throughput`` (one loop, every kind in turn); this module turns
them into tables. The bare task POSTs with httpx like ours; with a Redis result backend it
also stores its result in Redis, as ours records each ticket's outcome there.
"""

from __future__ import annotations

from statistics import median

from bench.report import Goal, Row, Table, spread
from bench.runs import (
    BARE,
    BARE_BACKEND,
    BARE_RATE,
    BATCH,
    BATCHED,
    RATE_PER_S,
    SINGLE,
    Results,
)

MIB = 1024 * 1024
CPU_GOAL = Goal("<=", 1.2)


def _cpu_row(
    results: Results, ms: int, kind: str, ref: str, note: str = "", goal: Goal | None = None
) -> Row:
    mine = [r.cpu_ms_per_task for r in results.of(ms, kind)]
    theirs = [r.cpu_ms_per_task for r in results.of(ms, ref)]
    text = spread(mine, theirs) + (f"; {note}" if note else "")
    return Row(
        f"{kind}, {ms} ms",
        median(mine),
        "CPU ms",
        f"{ref}, {ms} ms",
        median(theirs),
        text,
        goal=goal,
    )


def _cpu_rows(results: Results, ms: int) -> list[Row]:
    """One latency: ours (each path) against the bare task with and without a backend."""
    ours = [r.per_s for r in results.of(ms, SINGLE)]
    bare = [r.per_s for r in results.of(ms, BARE_BACKEND)]
    return [
        _cpu_row(results, ms, SINGLE, BARE_BACKEND, goal=CPU_GOAL),
        _cpu_row(results, ms, SINGLE, BARE),
        _cpu_row(results, ms, BATCHED, BARE_BACKEND, goal=CPU_GOAL),
        _cpu_row(results, ms, BATCHED, BARE),
        _cpu_row(results, ms, BARE_BACKEND, BARE, "what the result backend costs the bare task"),
        Row(
            f"{SINGLE}, {ms} ms",
            median(ours),
            "tasks/s",
            f"{BARE_BACKEND}, {ms} ms",
            median(bare),
            "throughput of the same runs; " + spread(ours, bare),
        ),
    ]


def _setup(results: Results, requests: int, repeat: int) -> str:
    return (
        f"{requests} tickets per run through one worker process (threads pool, concurrency"
        f" {results.concurrency}, log level WARNING, `--without-gossip --without-mingle` for"
        " the bare one), after one warm-up task, at 0 ms and 50 ms simulator latency. Ours:"
        f" `Producer.enqueue_many`, rate limit {RATE_PER_S:g}/s; single path"
        f" `HTAP_SYNC_BATCH_SIZE=1`, batched path `HTAP_SYNC_BATCH_SIZE={BATCH}`. Bare:"
        f" `bench.celery_bare`, `rate_limit` {BARE_RATE}, tasks sent one by one with"
        " `send_task`; with a Redis result backend (each task stores its result in the same"
        " Redis) and without one. The runs of the throughput table: medians of"
        f" {repeat} rounds, every kind once per round, in turn."
    )


def tables(results: Results, *, requests: int, repeat: int) -> list[Table]:
    """CPU per ticket (both latencies) and memory (0 ms) from the throughput loop's runs."""
    latencies = sorted({ms for ms, _ in results.runs})
    cpu = Table(
        "Worker CPU per ticket",
        _setup(results, requests, repeat) + " CPU is user + system of the worker process and"
        " its pool children, from the first task queued until every ticket is recorded (ours)"
        " or every result is stored (bare with a backend; without one, until the simulator saw"
        " every call), over the tickets of the run. Lower ratio is better.",
        [row for ms in latencies for row in _cpu_rows(results, ms)],
        [
            "The goal (issue 14): CPU per ticket at most 1.2 times the bare task's with a Redis"
            " result backend, the task that does what ours does at its simplest (POST with"
            " httpx, store the result in Redis).",
            "Ours does per ticket what the bare task does not: validate the message, claim the"
            " ticket (Lua), take a token from the fleet bucket (Lua), check the breaker, mark"
            " the ticket in doubt, record the outcome with its history, keep its watchdog"
            " entry and count it in the metrics.",
        ],
    )
    rss_rows = []
    ms = latencies[0]
    for kind in (SINGLE, BATCHED, BARE):
        mine = [r.usage.rss_bytes / MIB for r in results.of(ms, kind)]
        theirs = [r.usage.rss_bytes / MIB for r in results.of(ms, BARE_BACKEND)]
        rss_rows.append(
            Row(
                f"{kind}, {ms} ms",
                median(mine),
                "MiB",
                f"{BARE_BACKEND}, {ms} ms",
                median(theirs),
                spread(mine, theirs),
            )
        )
    rss = Table(
        "Worker memory",
        _setup(results, requests, repeat) + f" RSS of the worker process after its {ms} ms"
        " runs. Lower ratio is better.",
        rss_rows,
    )
    return [cpu, rss]
