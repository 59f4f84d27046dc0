"""Lanes and fair shares: a service's request behind a migration, two tenants' shares, and
the worker CPU a ticket costs with lanes against without (HTAP_SYNC_LANES=false).

    python -m bench.lanes
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from bench.fixtures import our_env, request, settings_from_env, simulator, tag
from bench.latency import percentile
from bench.procs import SETTLE_S, created, our_worker, usage
from bench.report import Goal, Row, Table, print_alone, progress
from htap_sync.common.models import TicketState, TicketStatus
from htap_sync.devstack import wait_until
from htap_sync.producer.api import Producer
from htap_sync.simulator import SimulatorServer

RATE = 20.0
LATENCY_MS = 50
CONCURRENCY = 8
WARM_TICKETS = 2 * CONCURRENCY * 16  # two batches (of the default 16) for each thread


def _env(redis_url: str, sim: SimulatorServer, prefix: str, **extra: str) -> dict[str, str]:
    env = our_env(redis_url, sim.url, prefix, rate_per_s=RATE, burst=5)
    env["HTAP_SYNC_FOLLOW"] = "false"
    env.update(extra)
    return env


def _interactive_behind_bulk(
    redis_url: str, logs: Path, *, lanes: bool, backlog: int, probes: int
) -> list[float]:
    """Milliseconds from enqueue to success of ``probes`` single requests sent one by one
    while a ``backlog``-row bulk submission drains at the rate."""
    prefix = tag("lanes_lat")
    with simulator(LATENCY_MS) as sim:
        env = _env(redis_url, sim, prefix, HTAP_SYNC_LANES=str(lanes).lower())
        producer = Producer(settings_from_env(env))
        list(producer.enqueue_many(request(f"{prefix}_b{i:05d}") for i in range(backlog)))
        worker = our_worker(prefix, env, logs, concurrency=CONCURRENCY)
        took: list[float] = []
        try:
            wait_until(lambda: created(sim, worker, int(2 * RATE)), timeout_s=60, what="bulk")
            for i in range(probes):
                sent = time.time()
                ticket = producer.enqueue(request(f"{prefix}_i{i:03d}")).ticket
                status = producer.wait([ticket], timeout_s=backlog / RATE * 2 + 30, poll_s=0.02)
                done = status[ticket]
                if done.state is not TicketState.SUCCEEDED:
                    raise RuntimeError(f"probe {i}: {done.state}")
                took.append((done.updated_at.timestamp() - sent) * 1000)
        finally:
            worker.stop()
            producer.close()
    return took


def _created(statuses: dict[str, TicketStatus]) -> list[float]:
    return sorted(s.updated_at.timestamp() for s in statuses.values())


def _tenant_shares(redis_url: str, logs: Path, *, sizes: tuple[int, int]) -> tuple[int, int]:
    """Creates of team_a (weight 2) and team_b (weight 1) while both had work."""
    prefix = tag("lanes_fair")
    with simulator(LATENCY_MS) as sim:
        env = _env(redis_url, sim, prefix, HTAP_SYNC_TENANT_WEIGHTS="team_a=2,team_b=1")
        producer = Producer(settings_from_env(env))
        worker = our_worker(prefix, env, logs, concurrency=CONCURRENCY)
        try:
            runs = []
            for team, size in zip(("team_a", "team_b"), sizes, strict=True):
                rows = (request(f"{prefix}_{team}_{i:05d}") for i in range(size))
                runs.append(
                    [r.ticket for r in producer.enqueue_many(rows, tenant=team) if r.ticket]
                )
            timeout = sum(sizes) / RATE * 2 + 60
            a, b = (_created(producer.wait(run, timeout_s=timeout, poll_s=0.2)) for run in runs)
        finally:
            worker.stop()
            producer.close()
    start, stop = max(a[0], b[0]) + 1.0, min(a[-1], b[-1]) - 1.0
    return sum(start <= t < stop for t in a), sum(start <= t < stop for t in b)


def _cpu_per_ticket(redis_url: str, logs: Path, *, lanes: bool, tickets: int) -> float:
    """Worker CPU milliseconds per ticket over a bulk run at a rate that never holds it back."""
    prefix = tag("lanes_cpu")
    with simulator(0) as sim:
        env = our_env(redis_url, sim.url, prefix, rate_per_s=10_000.0, burst=10_000)
        env.update({"HTAP_SYNC_FOLLOW": "false", "HTAP_SYNC_LANES": str(lanes).lower()})
        producer = Producer(settings_from_env(env))
        worker = our_worker(prefix, env, logs, concurrency=CONCURRENCY)
        try:
            # Warm-up: a bulk run that has every thread of the pool and its connections
            # started (a first run pays for them, by how many batches ran at once).
            warm = WARM_TICKETS
            list(producer.enqueue_many(request(f"{prefix}_w{i:05d}") for i in range(warm)))
            wait_until(lambda: created(sim, worker, warm), timeout_s=60, what="warm-up")
            time.sleep(SETTLE_S)
            before = usage(worker.process.pid)
            list(producer.enqueue_many(request(f"{prefix}_{i:05d}") for i in range(tickets)))
            wait_until(lambda: created(sim, worker, warm + tickets), timeout_s=120, what="run")
            time.sleep(SETTLE_S)
            spent = usage(worker.process.pid) - before
        finally:
            worker.stop()
            producer.close()
    return spent.cpu_s * 1000 / tickets


def _setup(backlog: int, probes: int, tickets: int, rounds: int) -> str:
    """The table's set-up text."""
    return (
        f"One worker (threads, concurrency {CONCURRENCY}), the simulator answering after"
        f" {LATENCY_MS} ms, {RATE:g} creates/s with a burst of 5. Latency: {probes} requests"
        f" sent one at a time with `Producer.enqueue` (interactive) once a {backlog}-row"
        " `enqueue_many` (bulk) is flowing, from enqueue to the ticket's `updated_at`; the"
        " reference is one such request with HTAP_SYNC_LANES=false (it waits behind the"
        f" backlog). Shares: 500 rows of team_a and 200 of team_b submitted together with"
        " HTAP_SYNC_TENANT_WEIGHTS=team_a=2,team_b=1, creates counted while both had work"
        f" (ratio 1.00: exactly the weights). CPU: after a warm-up of {WARM_TICKETS}"
        f" bulk tickets (every thread of the pool and its connections started), {tickets} bulk"
        " tickets at a rate that never holds them back, the worker's CPU seconds per ticket,"
        f" the least of {rounds} rounds"
        " each, lanes on and off in turn. Lower is better but for shares."
    )


def run(
    redis_url: str,
    logs: Path,
    *,
    backlog: int = 400,
    probes: int = 8,
    tickets: int = 1200,
    rounds: int = 7,
) -> list[Table]:
    """The three measurements, each lanes against without (or against the weights)."""
    progress(f"lanes: {probes} interactive requests behind {backlog} bulk rows, at {RATE:g}/s")
    with_lanes = _interactive_behind_bulk(
        redis_url, logs, lanes=True, backlog=backlog, probes=probes
    )
    without = _interactive_behind_bulk(redis_url, logs, lanes=False, backlog=backlog, probes=1)
    progress("lanes: two tenants weighted 2:1")
    a, b = _tenant_shares(redis_url, logs, sizes=(500, 200))
    progress(f"lanes: worker CPU per ticket, {tickets} bulk tickets, lanes on and off")
    on: list[float] = []
    off: list[float] = []
    for _ in range(rounds):  # alternating; the least of each (other load only adds CPU)
        on.append(_cpu_per_ticket(redis_url, logs, lanes=True, tickets=tickets))
        off.append(_cpu_per_ticket(redis_url, logs, lanes=False, tickets=tickets))
    cpu_on, cpu_off = min(on), min(off)
    behind = f"without lanes ({without[0] / 1000:.1f} s)"
    rows = [
        Row("interactive behind bulk, p50", percentile(with_lanes, 50), "ms", behind, without[0]),
        Row("interactive behind bulk, p99", percentile(with_lanes, 99), "ms", behind, without[0]),
        Row(
            "interactive behind bulk, p99",
            percentile(with_lanes, 99),
            "ms",
            f"2 s + the API's {LATENCY_MS} ms",
            2000 + LATENCY_MS,
            goal=Goal("<=", 1.0),
        ),
        Row("team_a's share (weight 2)", a / (a + b), "", "its weight's, 2/3", 2 / 3),
        Row("team_b's share (weight 1)", b / (a + b), "", "its weight's, 1/3", 1 / 3),
        Row(
            "worker CPU per ticket, lanes",
            cpu_on,
            "ms",
            f"without lanes ({cpu_off:.2f} ms)",
            cpu_off,
            goal=Goal("<=", 1.05),
        ),
    ]
    return [Table("Lanes and fair shares", _setup(backlog, probes, tickets, rounds), rows)]


def main(argv: list[str] | None = None) -> int:
    """Run this benchmark alone and print its table."""
    del argv
    return print_alone("lanes", run)


if __name__ == "__main__":
    sys.exit(main())
