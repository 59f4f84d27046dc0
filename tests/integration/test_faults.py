"""Guarantees under faults, on real parts: nothing lost, nothing created twice, waits outside
the broker. Heavy seeded faults, a worker SIGKILLed mid-run, Redis crashing and coming back."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from htap_sync.common.models import TicketState, TicketStatus
from htap_sync.common.settings import Settings, load_settings
from htap_sync.devstack import RedisServer, Service, wait_until
from htap_sync.producer.api import Producer
from htap_sync.simulator import SimulatorConfig, SimulatorServer
from tests.conftest import request_data
from tests.integration.conftest import WorkerFactory
from tests.integration.harness import TOKEN, child_env, wait_for
from tests.integration.paths import PATHS, submit

# Timing-bound: `make test` runs it in the serial set, after the others (see the Makefile).
pytestmark = pytest.mark.serial

UNKNOWN = "ffffffffffffffffffffffffffffffffin17"
# A short visibility timeout, so a killed worker's messages come back within seconds; it must
# exceed 2 x request timeout + 5 s (see Settings).
FAST_FAULTS: dict[str, Any] = {
    "request_timeout_s": 1,
    "visibility_timeout_s": 8,
    "backoff_base_s": 0.05,
    "backoff_max_s": 0.5,
    "max_attempts": 50,
    "deadline_s": 600,
    "rate_limit_per_s": 1000,
    "rate_burst": 1000,
}


def _succeeded(producer: Producer, tickets: list[str]) -> int:
    found = producer.statuses(tickets).values()
    return sum(1 for s in found if s is not None and s.state is TicketState.SUCCEEDED)


def _assert_each_created_once(sim: SimulatorServer, statuses: dict[str, TicketStatus]) -> None:
    for status in statuses.values():
        r = status.request
        assert sim.state.creates_for(r.project_id, r.instance_id, r.task_name) == 1, status
    assert sim.state.snapshot()["created_more_than_once"] == []


class TestHeavyFaults:
    """A few hundred requests through 5xx, lost answers, drops and hangs, with a worker killed."""

    @pytest.fixture
    def sim_config(self) -> SimulatorConfig:
        """Heavy seeded faults on every create call."""
        return SimulatorConfig(
            token=TOKEN,
            seed=20261128,
            unknown_instances=frozenset({UNKNOWN}),
            fail_rate=0.30,
            created_then_500_rate=0.05,
            drop_after_create_rate=0.03,
            hang_rate=0.01,
            hang_after_create_rate=0.01,
            hang_ms=2500,  # longer than the 1 s client timeout
        )

    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        """Fast retries and a visibility timeout of seconds."""
        return FAST_FAULTS

    @pytest.mark.timeout(240)
    @pytest.mark.parametrize("path", PATHS)
    def test_nothing_lost_nothing_twice_with_a_worker_killed(
        self,
        producer: Producer,
        simulator: SimulatorServer,
        start_worker: WorkerFactory,
        path: str,
    ) -> None:
        """Every good request succeeds, each task is created exactly once, and each permanent
        error was sent exactly once, though a worker was SIGKILLed mid-run and replaced; one
        message per ticket (``enqueue``), or HTAP_SYNC_BATCH_SIZE per message
        (``enqueue_many``: the batch task, its calls in flight together)."""
        good = submit(
            producer, [request_data(task_name=f"heavy_{i:03d}") for i in range(300)], path
        )
        bad = submit(
            producer,
            [request_data(instance_id=UNKNOWN, task_name=f"doomed_{i}") for i in range(10)],
            path,
        )
        workers = [start_worker(concurrency=4), start_worker(concurrency=4)]
        wait_until(lambda: _succeeded(producer, good) >= 60, timeout_s=120, what="60 done")
        workers[0].kill()  # mid-run: it holds tickets in flight
        workers.append(start_worker(concurrency=4))

        statuses = wait_for(producer, good + bad, timeout_s=150, workers=workers[1:])
        for ticket in good:
            assert statuses[ticket].state is TicketState.SUCCEEDED, statuses[ticket]
        for ticket in bad:
            status = statuses[ticket]
            assert status.state is TicketState.FAILED
            assert status.error is not None and status.error.error_code == "DBS.200022"
        _assert_each_created_once(simulator, {t: statuses[t] for t in good})
        assert simulator.state.created == 300
        answers = simulator.state.create_answers()
        assert answers.get(400) == 10  # each permanent error was sent once, never retried
        assert answers.get(409, 0) == 0  # no create was ever tried for a task that existed
        faults = simulator.state.faults_injected()
        assert faults.get("created_then_500", 0) > 0 and faults.get("drop_after_create", 0) > 0
        # Some successes were only known through the list call: the lost answers.
        assert any(statuses[t].reconciled for t in good)


class TestLongWaits:
    """Waits several times longer than the visibility timeout never sit in the broker."""

    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        """A visibility timeout of 8 s and waits allowed up to a minute."""
        return {**FAST_FAULTS, "backoff_max_s": 60}

    @pytest.mark.serial(seconds=21)
    @pytest.mark.timeout(120)
    def test_a_wait_past_the_visibility_timeout_is_not_delivered_twice(
        self, producer: Producer, simulator: SimulatorServer, start_worker: WorkerFactory
    ) -> None:
        """A 429 with Retry-After 20 (2.5 x the visibility timeout) leads to exactly one more
        call after the wait: no redelivery, no extra attempt, one task."""
        simulator.state.script(["throttle:20", "ok"])
        receipt = producer.enqueue(request_data(task_name="waits_long"))
        workers = [start_worker(concurrency=2), start_worker(concurrency=2)]
        wait_until(
            lambda: producer.status(receipt.ticket).state is TicketState.RETRYING,
            timeout_s=30,
            what="the throttled attempt",
        )
        status = wait_for(producer, [receipt.ticket], timeout_s=90, workers=workers)[receipt.ticket]
        assert status.state is TicketState.SUCCEEDED
        # The second call honoured Retry-After (20 s, capped by nothing below it), as recorded
        # by the worker itself; 1 s of slack for the mover's look-ups.
        assert (status.history[1].at - status.history[0].at).total_seconds() >= 19
        assert simulator.state.create_calls == 2
        assert [(a.call, a.outcome, a.http_status) for a in status.history] == [
            ("create", "error", 429),
            ("create", "created", None),
        ]
        assert status.attempts == 1  # the throttled call cost no attempt
        _assert_each_created_once(simulator, {receipt.ticket: status})


class TestRedisCrash:
    """Redis crashes mid-run (SIGKILL) and restarts from its append-only file."""

    @pytest.fixture
    def sim_config(self) -> SimulatorConfig:
        """50 ms per call, so that the crash lands in the middle of the run."""
        return SimulatorConfig(token=TOKEN, seed=5, latency_ms=50)

    @pytest.mark.timeout(240)
    @pytest.mark.parametrize(
        ("overrides", "within_s"),
        [(FAST_FAULTS, 150), ({}, 60)],
        ids=["fast-timeouts", "readme-defaults"],
    )
    @pytest.mark.serial(seconds=20)
    @pytest.mark.parametrize("path", PATHS)
    def test_redis_crash_with_aof_loses_nothing(
        self,
        tmp_path: Path,
        simulator: SimulatorServer,
        overrides: dict[str, Any],
        within_s: float,
        path: str,
    ) -> None:
        """Every accepted request succeeds and each task is created once, across the crash;
        on the README's default settings (a 5-minute visibility timeout) too, all within 60 s
        of Redis coming back."""
        data = tmp_path / "redis-aof"
        data.mkdir()
        server = RedisServer(data, appendonly=True, appendfsync="always").wait_ready()
        settings = load_settings(
            {
                **overrides,
                "redis_url": server.url,
                "endpoint": simulator.url,
                "auth_token": TOKEN,
                "key_prefix": f"aof-{uuid.uuid4().hex[:8]}",
                "queue": "aof",
            },
            env_file=None,
        )
        producer = Producer(settings)
        restarted: RedisServer | None = None
        worker: Service | None = None
        try:
            tickets = submit(
                producer, [request_data(task_name=f"aof_{i:03d}") for i in range(200)], path
            )
            # A worker on this test's Redis (the start_worker fixture uses the session's).
            worker = _worker_on(settings, tmp_path)
            wait_until(lambda: _succeeded(producer, tickets) >= 40, timeout_s=60, what="40 done")
            server.kill()
            done_before_crash = simulator.state.created
            restarted = RedisServer(data, appendonly=True, appendfsync="always", port=server.port)
            restarted.wait_ready()
            # wait() rides out Redis coming back; a dead worker fails the test at once.
            statuses = wait_for(producer, tickets, timeout_s=within_s, workers=[worker])
            assert done_before_crash < 200  # the crash did land mid-run
            assert {s.state for s in statuses.values()} == {TicketState.SUCCEEDED}
            _assert_each_created_once(simulator, statuses)
            assert simulator.state.created == 200
            assert worker.stop() in (0, -15)
        finally:
            producer.close()
            for service in (worker, restarted, server):
                if service is not None:
                    service.stop()


def _worker_on(settings: Settings, log_dir: Path) -> Service:
    import sys

    env = child_env(settings)
    return Service(
        "worker-aof",
        [sys.executable, "-m", "htap_sync", "worker", "--concurrency", "4"],
        env=env,
        log_dir=log_dir,
    )
