"""Lanes and fair shares with real workers and Redis, at issue 23's numbers (a fleet of 3
workers, 5 creates/s): a service's request overtakes a 1,000-row migration (and a new
worker's wave of bulk tickets refused together), two migrations
started 10 s apart share the rate (by weight), and bulk keeps its minimum share under an
interactive flood.

Every bound is held against the configured rate: how many creates the API saw while one
ticket waited, or each lane's and tenant's share of the creates in a window while both had
work. No test waits for its backlog to drain: what is measured is over by then (the workers
are stopped with the backlog still queued).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import pytest

from htap_sync.common.models import TicketStatus
from htap_sync.devstack import Service, wait_until
from htap_sync.producer.api import Producer
from htap_sync.simulator import SimulatorConfig, SimulatorServer
from tests.conftest import request_data
from tests.integration.conftest import WorkerFactory
from tests.integration.harness import TOKEN, wait_for

# Timing-bound: `make test` runs it in the serial set, after the others (see the Makefile).
pytestmark = pytest.mark.serial

RATE = 5.0
BURST = 5
LATENCY_S = 0.05
WINDOW_S = 20.0  # how long both lanes' or tenants' shares are measured


@pytest.fixture
def sim_config() -> SimulatorConfig:
    """The API answers in 50 ms."""
    return SimulatorConfig(token=TOKEN, seed=23, latency_ms=int(LATENCY_S * 1000))


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """5 creates/s for the fleet, a burst of 5; following off (create calls only)."""
    return {"rate_limit_per_s": RATE, "rate_burst": BURST, "follow": False}


def _bulk(producer: Producer, prefix: str, count: int, **routing: Any) -> list[str]:
    rows = [request_data(task_name=f"{prefix}_{i:04d}") for i in range(count)]
    results = list(producer.enqueue_many(rows, **routing))
    assert all(r.status == "queued" for r in results)
    return [r.ticket for r in results if r.ticket is not None]


def _created_at(statuses: Iterable[TicketStatus]) -> list[float]:
    """When each ticket's task was created (epoch seconds), from its history."""
    return sorted(
        a.at.timestamp()
        for s in statuses
        for a in s.history
        if a.call == "create" and a.outcome == "created"
    )


def _within(times: list[float], start: float, stop: float) -> int:
    return sum(start <= t < stop for t in times)


def _creates(simulator: SimulatorServer) -> int:
    return len(simulator.state.create_call_times())


def _fleet(start_worker: WorkerFactory) -> list[Service]:
    return [start_worker(concurrency=4) for _ in range(3)]


def _statuses(producer: Producer, tickets: list[str]) -> list[TicketStatus]:
    return [s for s in producer.statuses(tickets).values() if s is not None]


def _overtakes(producer: Producer, simulator: SimulatorServer, workers: list[Service]) -> None:
    """Once bulk flows (2 s of the rate created), one interactive request: it is created
    while the API sees no more than 2 s of the rate (+ its latency and the burst) of other
    creates."""
    wait_until(lambda: _creates(simulator) >= 2 * RATE, timeout_s=30, what="bulk flowing")
    started = time.monotonic()
    ticket = producer.enqueue(request_data(task_name="service_call")).ticket
    assert producer.status(ticket).request.lane == "interactive"
    (status,) = wait_for(producer, [ticket], timeout_s=30, workers=workers).values()
    assert status.state == "succeeded"
    others = sum(t > started for t in simulator.state.create_call_times()) - 1
    assert others <= RATE * (2.0 + LATENCY_S) + BURST, others


@pytest.mark.timeout(120)
def test_an_interactive_request_overtakes_a_bulk_backlog(
    producer: Producer, simulator: SimulatorServer, start_worker: WorkerFactory
) -> None:
    """1,000 bulk rows (200 s at the rate) flowing, then one interactive request: created
    within 2 s of the rate; the backlog had minutes to go still."""
    bulk = _bulk(producer, "backlog", 1000)
    _overtakes(producer, simulator, _fleet(start_worker))
    done = sum(s.state == "succeeded" for s in _statuses(producer, bulk))
    assert done < len(bulk) - RATE * 60


@pytest.mark.timeout(120)
def test_a_new_worker_s_first_interactive_request_is_not_held_behind_the_bulk_it_refused(
    producer: Producer, simulator: SimulatorServer, start_worker: WorkerFactory
) -> None:
    """A worker started on a bulk backlog takes a batch in each of its 4 slots and is
    refused most of their tickets by the rate; they come due together a second later, and
    its slots each sleep a reserved token (5 of them in the bucket's second). An interactive
    request sent then is created within 2 s of the rate, not behind that wave (which used to
    be sent again ahead of it, and held it there 10 s)."""
    _bulk(producer, "backlog", 400)
    _overtakes(producer, simulator, [start_worker(concurrency=4)])


def _await_creates(simulator: SimulatorServer, count: float) -> None:
    """Until the API has seen ``count`` creates (a window's worth past its start)."""
    wait_until(lambda: _creates(simulator) >= count, timeout_s=WINDOW_S * 3, what="the window")


def _in_window(
    producer: Producer, groups: list[list[str]], *, anchor: int, lead_s: float, running: list[int]
) -> list[int]:
    """Each group's creates in a ``WINDOW_S`` window from ``lead_s`` after the first create of
    group ``anchor``; the groups in ``running`` must still have run at its end."""
    times = [_created_at(_statuses(producer, group)) for group in groups]
    start = times[anchor][0] + lead_s
    stop = start + WINDOW_S
    for index in running:
        assert times[index][-1] >= stop - 1.0, (index, stop)  # still ran at the window's end
    return [_within(t, start, stop) for t in times]


def _shares(
    producer: Producer, simulator: SimulatorServer, start_worker: WorkerFactory
) -> tuple[int, int, float]:
    """Tenant a's migration, then, 10 s of the rate later, tenant b's (600 rows each, two
    minutes at the rate): the creates of each in a window of both, and the window's rate."""
    first = _bulk(producer, "team_a", 600, tenant="team_a")
    _fleet(start_worker)
    wait_until(lambda: _creates(simulator) >= 10 * RATE, timeout_s=40, what="a's 10 s")
    second = _bulk(producer, "team_b", 600, tenant="team_b")
    _await_creates(simulator, _creates(simulator) + (WINDOW_S + 3) * RATE)
    in_a, in_b = _in_window(producer, [first, second], anchor=1, lead_s=1.0, running=[0, 1])
    return in_a, in_b, (in_a + in_b) / WINDOW_S


@pytest.mark.serial(seconds=35)
@pytest.mark.timeout(150)
def test_two_migrations_share_the_rate_half_and_half(
    producer: Producer, simulator: SimulatorServer, start_worker: WorkerFactory
) -> None:
    """While both run, each tenant gets 50 % (+-10 %) of the creates, the fleet the rate."""
    in_a, in_b, rate = _shares(producer, simulator, start_worker)
    assert in_b / (in_a + in_b) == pytest.approx(0.5, abs=0.1), (in_a, in_b)
    assert rate == pytest.approx(RATE, rel=0.15), rate


class TestWeights:
    """Tenant weights 2:1."""

    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        """team_a weighs 2, team_b 1."""
        return {
            "rate_limit_per_s": RATE,
            "rate_burst": BURST,
            "follow": False,
            "tenant_weights": "team_a=2,team_b=1",
        }

    @pytest.mark.serial(seconds=37)
    @pytest.mark.timeout(150)
    def test_two_migrations_share_the_rate_two_to_one(
        self, producer: Producer, simulator: SimulatorServer, start_worker: WorkerFactory
    ) -> None:
        """While both run, team_a gets twice team_b's creates (+-10 %)."""
        in_a, in_b, _ = _shares(producer, simulator, start_worker)
        assert in_a / in_b == pytest.approx(2.0, rel=0.1), (in_a, in_b)


@pytest.mark.serial(seconds=30)
@pytest.mark.timeout(150)
def test_bulk_keeps_its_minimum_share_under_an_interactive_flood(
    producer: Producer, simulator: SimulatorServer, start_worker: WorkerFactory
) -> None:
    """300 interactive requests (a minute at the rate) and 300 bulk rows at once: while the
    flood lasts, bulk gets at least its minimum share (20 %, less 5 points) and interactive
    keeps the most (at least 70 %)."""
    flood = [producer.enqueue(request_data(task_name=f"svc_{i:04d}")).ticket for i in range(300)]
    bulk = _bulk(producer, "mig", 300)
    _fleet(start_worker)
    _await_creates(simulator, (WINDOW_S + 6) * RATE)
    in_i, in_b = _in_window(producer, [flood, bulk], anchor=0, lead_s=3.0, running=[0])
    assert 0.15 <= in_b / (in_i + in_b) <= 0.3, (in_i, in_b)
