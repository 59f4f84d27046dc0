"""Redis commands and round trips per ticket, ours (each path) against the bare Celery task.

Each kind of worker takes N tickets on a fresh redis-server of its own, with its Redis traffic
counted inside its process by ``bench.redis_count``; the producer's (or the ``send_task``
loop's) is counted the same way inside this process.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench.fixtures import simulator
from bench.redis_count import Counts
from bench.report import Row, Table, print_alone, progress
from bench.runs import (
    BARE,
    BARE_BACKEND,
    BATCH,
    BATCHED,
    KINDS,
    SINGLE,
    Run,
    run_bare,
    run_ours,
)
from bench.traffic import IDLE_S, RedisTraffic, minus
from htap_sync.devstack import RedisServer
from htap_sync.simulator import SimulatorServer


def _one(kind: str, sim: SimulatorServer, logs: Path, requests: int, concurrency: int) -> Run:
    """One run of ``kind`` on a redis-server of its own, its Redis traffic counted."""
    with tempfile.TemporaryDirectory(prefix="bench-commands-", dir=logs) as tmp:
        server = RedisServer(Path(tmp)).wait_ready()
        counts = Path(tmp) / "counts.json"
        try:
            if kind in (SINGLE, BATCHED):
                return run_ours(
                    server.url,
                    sim,
                    logs,
                    requests=requests,
                    concurrency=concurrency,
                    batch_size=1 if kind == SINGLE else BATCH,
                    counts=counts,
                )
            return run_bare(
                server.url,
                sim,
                logs,
                requests=requests,
                concurrency=concurrency,
                result_backend=kind == BARE_BACKEND,
                counts=counts,
            )
        finally:
            server.stop()


def breakdown(counts: Counts, tickets: int) -> str:
    """``EVALSHA 4.00, HSET 1.00, ...``: commands per ticket by name, most first."""
    named = sorted(counts.commands.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{name} {count / tickets:.2f}" for name, count in named) or "none"


def _figure(counts: Counts, what: str) -> int:
    return counts.round_trips if what == "round trips" else counts.total


def _rows(traffic: dict[str, RedisTraffic], tickets: int) -> list[Row]:
    ref = traffic[BARE_BACKEND]
    rows: list[Row] = []
    for side in ("worker", "producer"):
        for what in ("round trips", "commands"):
            for kind in (SINGLE, BATCHED, BARE):
                mine: Counts = getattr(traffic[kind], side)
                theirs: Counts = getattr(ref, side)
                rows.append(
                    Row(
                        f"{kind}: {side} {what} per ticket",
                        _figure(mine, what) / tickets,
                        what,
                        f"{BARE_BACKEND}: {side} {what} per task",
                        _figure(theirs, what) / tickets,
                    )
                )
    # Everything Redis ran for the producer and the worker, their scripts' commands included.
    for kind in (SINGLE, BATCHED, BARE):
        rows.append(
            Row(
                f"{kind}: commands Redis ran per ticket",
                _ran(traffic[kind]) / tickets,
                "commands",
                f"{BARE_BACKEND}: the same per task",
                _ran(ref) / tickets,
                "producer and worker, their scripts' commands included (INFO commandstats)",
            )
        )
    return rows


def _ran(traffic: RedisTraffic) -> int:
    """What Redis ran for the producer and the worker: all but this process's polling."""
    return minus(traffic.server, minus(traffic.here, traffic.producer)).total


def _notes(traffic: dict[str, RedisTraffic], tickets: int) -> list[str]:
    notes = [
        "A round trip is one write of a client to its socket that is then answered: a command"
        " alone, or a pipeline or MULTI/EXEC block sent at once (its commands all count as"
        " commands). Counted inside each process by wrapping redis-py's"
        " `send_packed_command`, which every Redis client of the process goes through (kombu's"
        " broker channels, Celery's result backend, the product's stores). Redis's own"
        " `INFO commandstats` cannot tell one client from another, and `MONITOR` shows"
        " commands but not where a pipeline starts or ends. Commands a Lua script runs inside"
        " Redis are not client commands: an EVALSHA counts once. What Redis ran that neither"
        " the worker nor this process sent (`INFO commandstats` before and after, less both"
        " counts) is what the scripts ran: 0 for the bare task, which runs none, checks the"
        " method. So does the server's own count of read events, less this process's round"
        " trips, against the worker's count of its round trips (connection closes and split"
        " reads add a few).",
        "Worker figures include what the idle worker sends anyway while the run lasts (its"
        " broker polling and housekeeping).",
    ]
    for kind in KINDS:
        t = traffic[kind]
        idle = t.idle.round_trips / t.idle_s if t.idle_s else 0.0
        reads = minus(t.server, t.here).round_trips / tickets
        notes.append(
            f"{kind}: worker commands per ticket: {breakdown(t.worker, tickets)}; inside the"
            f" producer's and worker's scripts: {breakdown(t.in_scripts, tickets)}; producer:"
            f" {breakdown(t.producer, tickets)}; idle worker: {idle:.1f} round trips/s"
            f" (counted over {IDLE_S:g} s before the run); Redis read events {reads:.2f} per"
            f" ticket against {t.worker.round_trips / tickets:.2f} worker round trips."
        )
    return notes


def run(redis_url: str, logs: Path, *, requests: int = 400, concurrency: int = 16) -> list[Table]:
    """Each kind once at 0 ms simulator latency; the table of its traffic per ticket."""
    del redis_url  # each kind gets a fresh redis-server of its own
    traffic: dict[str, RedisTraffic] = {}
    with simulator(0) as sim:
        for kind in KINDS:
            progress(f"redis traffic: {kind}, {requests} tickets")
            one = _one(kind, sim, logs, requests, concurrency)
            if one.redis is None:
                raise RuntimeError(f"{kind}: the run counted no Redis traffic")
            traffic[kind] = one.redis
            progress(f"  {one.redis.worker.round_trips / requests:.2f} round trips per ticket")
    setup = (
        f"{requests} tickets through one worker process (threads pool, concurrency"
        f" {concurrency}) after one warm-up task, at 0 ms simulator latency, each kind on a"
        " fresh redis-server of its own; the single path is `HTAP_SYNC_BATCH_SIZE=1`, the"
        f" batched path `HTAP_SYNC_BATCH_SIZE={BATCH}`. Worker: from the first ticket queued"
        " until every ticket is recorded (every result stored, for the bare task with a"
        " backend). Producer: `Producer.enqueue_many` of the N requests for ours, a loop of"
        " `send_task` for the bare task. One run of each (the counts hardly vary). Lower ratio"
        " is better."
    )
    return [
        Table(
            "Redis round trips and commands per ticket",
            setup,
            _rows(traffic, requests),
            _notes(traffic, requests),
        )
    ]


def main(argv: list[str] | None = None) -> int:
    """Run this benchmark alone and print its table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args(argv)
    return print_alone("commands", lambda url, logs: run(url, logs, requests=args.requests))


if __name__ == "__main__":
    sys.exit(main())
