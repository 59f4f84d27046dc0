"""Kind to the cloud: one rate for the whole fleet, adaptive on 429, and a shared breaker."""

from __future__ import annotations

from typing import Any

import pytest

from htap_sync.common.models import TicketState
from htap_sync.producer.api import Producer
from htap_sync.simulator import SimulatorConfig, SimulatorServer, max_in_window, observed_rate
from htap_sync.worker.fleet import fleet_view
from tests.conftest import request_data
from tests.integration.conftest import WorkerFactory
from tests.integration.harness import TOKEN, wait_for
from tests.integration.paths import PATHS, submit
from tests.integration.test_faults import FAST_FAULTS

# Timing-bound: `make test` runs them with the other timing-bound tests, and TestGlobalRate,
# which counts calls in one-second windows, last, one at a time, beside nothing (beside three
# other timing-bound tests one window once saw 16 calls for 15).
pytestmark = pytest.mark.serial


@pytest.fixture(params=PATHS)
def path(request: pytest.FixtureRequest) -> str:
    """A message per ticket (``enqueue``), or batches (``enqueue_many``): each ticket of a
    batch takes its own rate token and passes the breaker on its own."""
    return str(request.param)


@pytest.mark.alone
class TestGlobalRate:
    """Four worker processes share one rate."""

    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        """10 calls/s for the whole fleet, a burst of 5."""
        return {"rate_limit_per_s": 10, "rate_burst": 5}

    @pytest.mark.timeout(180)
    def test_four_workers_hold_the_configured_rate(
        self,
        producer: Producer,
        simulator: SimulatorServer,
        start_worker: WorkerFactory,
        path: str,
    ) -> None:
        """Over a run of 200 requests the API sees 0.9-1.05 of 10/s, and never more than
        rate + burst (15) in any one-second window."""
        tickets = submit(
            producer, [request_data(task_name=f"paced_{i:03d}") for i in range(200)], path
        )
        workers = [start_worker(concurrency=4) for _ in range(4)]
        statuses = wait_for(producer, tickets, timeout_s=120, workers=workers)
        assert {s.state for s in statuses.values()} == {TicketState.SUCCEEDED}
        times = simulator.state.create_call_times()
        assert len(times) == 200
        rate = observed_rate(times)
        assert 9.0 <= rate <= 10.5, rate
        assert max_in_window(times, 1.0) <= 15


class TestAdaptiveRate:
    """The API's own limit is below the configured rate."""

    @pytest.fixture
    def sim_config(self) -> SimulatorConfig:
        """A gateway that allows 4 creates a second."""
        return SimulatorConfig(token=TOKEN, seed=3, rate_limit_per_s=4, rate_limit_burst=4)

    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        """We were told 10/s; the gateway disagrees."""
        return {"rate_limit_per_s": 10, "rate_burst": 5, "max_attempts": 2}

    @pytest.mark.serial(seconds=26)
    @pytest.mark.timeout(180)
    def test_workers_converge_below_the_gateways_limit(
        self,
        producer: Producer,
        simulator: SimulatorServer,
        start_worker: WorkerFactory,
        path: str,
    ) -> None:
        """Every ticket succeeds with one attempt (429s cost none, though max_attempts is 2),
        and the effective rate the fleet settles on is below the gateway's."""
        tickets = submit(
            producer, [request_data(task_name=f"adapt_{i:03d}") for i in range(80)], path
        )
        workers = [start_worker(concurrency=4) for _ in range(2)]
        statuses = wait_for(producer, tickets, timeout_s=150, workers=workers)
        assert {s.state for s in statuses.values()} == {TicketState.SUCCEEDED}
        assert {s.attempts for s in statuses.values()} == {1}
        assert simulator.state.throttled_by_limit > 0  # the gateway did push back...
        throttled = sum(1 for s in statuses.values() for a in s.history if a.http_status == 429)
        assert throttled < 80  # ...and the fleet slowed down instead of hammering it
        (limit,) = [
            r
            for r in fleet_view(producer.store.redis, producer.settings)["rate_limits"]
            if r["api"] == "create"
        ]
        assert limit["effective_per_s"] < 10
        assert observed_rate(simulator.state.create_call_times()) <= 4.5


class TestBreaker:
    """Sustained server errors open the shared breaker; recovery closes it."""

    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        """Open after 5 consecutive failures, probe after 2 s; the fault tests' short timeouts
        (a probe that never answers is given up after a lease of seconds, not of minutes)."""
        return {
            **FAST_FAULTS,
            "breaker_threshold": 5,
            "breaker_cooldown_s": 2,
            "breaker_probes": 2,
        }

    @pytest.mark.timeout(180)
    def test_breaker_opens_under_a_burst_of_5xx_and_no_ticket_fails(
        self,
        producer: Producer,
        simulator: SimulatorServer,
        start_worker: WorkerFactory,
        path: str,
    ) -> None:
        """A burst of 500s opens the breaker (tickets wait), it closes after recovery, and
        every ticket succeeds, each task created once."""
        simulator.state.script(["fail"] * 12)
        tickets = submit(
            producer, [request_data(task_name=f"brk_{i:02d}") for i in range(30)], path
        )
        workers = [start_worker(concurrency=4) for _ in range(2)]
        statuses = wait_for(producer, tickets, timeout_s=120, workers=workers)
        assert {s.state for s in statuses.values()} == {TicketState.SUCCEEDED}
        assert simulator.state.created == 30
        (breaker,) = fleet_view(producer.store.redis, producer.settings)["breakers"]
        assert breaker["opened"] >= 1
        assert breaker["state"] == "closed"
        # While open, calls were held back: far fewer failures than tickets x attempts.
        assert simulator.state.create_answers().get(500, 0) == 12
