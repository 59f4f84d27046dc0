"""Lanes and fair shares with real workers and Redis: a service's request overtakes a
migration, two migrations share the rate (by weight), and bulk keeps its minimum share.

Every bound is held against the configured rate: how many creates the API saw while one
ticket waited, or each lane's and tenant's share of the creates while both had work.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import pytest

from htap_sync.common.models import TicketStatus
from htap_sync.devstack import wait_until
from htap_sync.producer.api import Producer
from htap_sync.simulator import SimulatorConfig, SimulatorServer
from tests.conftest import request_data
from tests.integration.conftest import WorkerFactory
from tests.integration.harness import TOKEN, wait_for

# Timing-bound: `make test` runs it alone, after the tests that run two at a time.
pytestmark = pytest.mark.serial

RATE = 30.0
BURST = 5
LATENCY_S = 0.05


@pytest.fixture
def sim_config() -> SimulatorConfig:
    """The API answers in 50 ms."""
    return SimulatorConfig(token=TOKEN, seed=23, latency_ms=int(LATENCY_S * 1000))


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """30 creates/s for the fleet, a burst of 5; following off (create calls only)."""
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


@pytest.mark.timeout(120)
def test_an_interactive_request_overtakes_a_bulk_backlog(
    producer: Producer, simulator: SimulatorServer, start_worker: WorkerFactory
) -> None:
    """600 bulk rows (20 s at the rate) flowing, then one interactive request: it is created
    while the API sees no more than 2 s of the rate (+ its latency and the burst) of other
    creates, far ahead of the backlog."""
    bulk = _bulk(producer, "backlog", 600)
    workers = [start_worker(concurrency=4) for _ in range(2)]
    wait_until(lambda: _creates(simulator) >= 2 * RATE, timeout_s=30, what="bulk flowing")
    started = time.monotonic()
    ticket = producer.enqueue(request_data(task_name="service_call")).ticket
    assert producer.status(ticket).request.lane == "interactive"
    (status,) = wait_for(producer, [ticket], timeout_s=30, workers=workers).values()
    assert status.state == "succeeded"
    others = sum(t > started for t in simulator.state.create_call_times()) - 1
    assert others <= RATE * (2.0 + LATENCY_S) + BURST, others
    done = sum(producer.status(t).state == "succeeded" for t in bulk)
    assert done < len(bulk) - RATE * 5  # the backlog had far to go still
    wait_for(producer, bulk, timeout_s=60, workers=workers)


def _two_migrations(
    producer: Producer, simulator: SimulatorServer, start_worker: WorkerFactory, sizes: list[int]
) -> tuple[list[float], list[float]]:
    """Tenant a's migration, then, 5 s of the rate later, tenant b's: their creates."""
    first = _bulk(producer, "team_a", sizes[0], tenant="team_a")
    workers = [start_worker(concurrency=4) for _ in range(2)]
    wait_until(lambda: _creates(simulator) >= 5 * RATE, timeout_s=30, what="a's 5 s")
    second = _bulk(producer, "team_b", sizes[1], tenant="team_b")
    both = wait_for(producer, first + second, timeout_s=90, workers=workers)
    a = _created_at(both[t] for t in first)
    b = _created_at(both[t] for t in second)
    assert {s.request.tenant for s in both.values()} == {"team_a", "team_b"}
    return a, b


@pytest.mark.timeout(150)
def test_two_migrations_share_the_rate_half_and_half(
    producer: Producer, simulator: SimulatorServer, start_worker: WorkerFactory
) -> None:
    """While both run, each tenant gets 50 % (+-10 %) of the creates, the fleet the rate."""
    a, b = _two_migrations(producer, simulator, start_worker, [520, 200])
    start, stop = b[0] + 1.0, b[-1] - 1.0
    assert a[-1] > stop  # a outlasted b
    in_a, in_b = _within(a, start, stop), _within(b, start, stop)
    assert in_b / (in_a + in_b) == pytest.approx(0.5, abs=0.05), (in_a, in_b)
    assert (in_a + in_b) / (stop - start) == pytest.approx(RATE, rel=0.1)


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

    @pytest.mark.timeout(150)
    def test_two_migrations_share_the_rate_two_to_one(
        self, producer: Producer, simulator: SimulatorServer, start_worker: WorkerFactory
    ) -> None:
        """While both run, team_a gets twice team_b's creates (+-10 %)."""
        a, b = _two_migrations(producer, simulator, start_worker, [600, 150])
        start, stop = b[0] + 1.0, b[-1] - 1.0
        assert a[-1] > stop
        in_a, in_b = _within(a, start, stop), _within(b, start, stop)
        assert in_a / in_b == pytest.approx(2.0, rel=0.1), (in_a, in_b)


@pytest.mark.timeout(150)
def test_bulk_keeps_its_minimum_share_under_an_interactive_flood(
    producer: Producer, simulator: SimulatorServer, start_worker: WorkerFactory
) -> None:
    """450 interactive requests and 300 bulk rows at once: while the flood lasts, bulk gets
    at least its minimum share (20 %, less 5 points) and interactive keeps the most (at
    least 70 %). The flood's last seconds are left out: as it thins, bulk rightly gets more."""
    flood = [producer.enqueue(request_data(task_name=f"svc_{i:04d}")).ticket for i in range(450)]
    bulk = _bulk(producer, "mig", 300)
    workers = [start_worker(concurrency=4) for _ in range(2)]
    done = wait_for(producer, flood + bulk, timeout_s=90, workers=workers)
    interactive = _created_at(done[t] for t in flood)
    migration = _created_at(done[t] for t in bulk)
    start, stop = interactive[0] + 3.0, min(interactive[-1], migration[-1]) - 4.0
    assert stop - start > 5
    in_i, in_b = _within(interactive, start, stop), _within(migration, start, stop)
    assert 0.15 <= in_b / (in_i + in_b) <= 0.3, (in_i, in_b)
