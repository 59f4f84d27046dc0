"""Configured creation by a fleet under chaos: 200 requests with a table selection, three
worker processes, one SIGKILLed mid-run, heavy seeded faults on every creating call (the
configuration checks and the create calls that start the tasks). Every task is configured
once, started, and followed to syncing: nothing lost, nothing created twice."""

from __future__ import annotations

from typing import Any

import pytest

from htap_sync.common.models import TicketState
from htap_sync.devstack import wait_until
from htap_sync.producer.api import Producer
from htap_sync.simulator import SimulatorConfig, SimulatorServer
from tests.conftest import request_data
from tests.integration.conftest import WorkerFactory
from tests.integration.harness import TOKEN, wait_for
from tests.integration.paths import PATHS, submit
from tests.integration.test_faults import FAST_FAULTS, _assert_each_created_once, _succeeded

COUNT = 200
SELECTION: dict[str, Any] = {
    "table_repl_config": {
        "repl_type": "include_tables",
        "repl_scope": "part",
        "tables": ["tenant", "tenant_db"],
    },
    "tables_configs": [
        {"table_name": "tenant", "table_config": "order by tenant_name;key columns tenant_name"}
    ],
    "db_configs": [{"param_name": "binlog_expire_logs_seconds", "value": "0"}],
}


class TestConfiguredUnderChaos:
    """Faults on the checks and the starts; a worker killed holding deliveries."""

    @pytest.fixture
    def sim_config(self) -> SimulatorConfig:
        """TestHeavyFaults' seeded faults; started tasks Wait 1 s, so a start whose answer was
        lost is found still in Wait (not yet telling started from configured)."""
        return SimulatorConfig(
            token=TOKEN,
            seed=20261204,
            fail_rate=0.20,
            created_then_500_rate=0.05,
            drop_after_create_rate=0.03,
            hang_rate=0.01,
            hang_after_create_rate=0.01,
            hang_ms=2500,  # longer than the 1 s client timeout
            stage_wait_s=1.0,
            stage_full_s=0.5,
        )

    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        """Fast retries, a visibility timeout of seconds, quick follow rounds."""
        return {**FAST_FAULTS, "follow_first_s": 0.2, "follow_interval_s": 0.5}

    @pytest.mark.timeout(300)
    @pytest.mark.parametrize("path", PATHS)
    def test_every_task_configured_once_started_and_syncing(
        self,
        path: str,
        producer: Producer,
        simulator: SimulatorServer,
        start_worker: WorkerFactory,
    ) -> None:
        """200 configured tickets all succeed and sync; each task created once, started,
        carrying its selection; faults hit both phases; one of three workers SIGKILLed."""
        requests = [{**request_data(task_name=f"cfg_{i:03d}"), **SELECTION} for i in range(COUNT)]
        tickets = submit(producer, requests, path)
        workers = [start_worker(concurrency=4) for _ in range(3)]
        wait_until(lambda: _succeeded(producer, tickets) >= 40, timeout_s=120, what="40 done")
        workers[0].kill()  # mid-run: it holds deliveries in either phase
        statuses = wait_for(producer, tickets, timeout_s=180, workers=workers[1:])
        bad = [s for s in statuses.values() if s.state is not TicketState.SUCCEEDED]
        assert not bad, [(s.request.task_name, s.error, s.history[-3:]) for s in bad[:3]]
        _assert_each_created_once(simulator, statuses)
        assert simulator.state.created == COUNT
        # Starts whose answers were lost: found started by the list call, never configured
        # again (the creates_for proof above).
        assert any(s.reconciled for s in statuses.values())
        synced = producer.wait(tickets, timeout_s=120, poll_s=0.5, until="synced")
        states = {t: (s.sync.state.value if s.sync else None) for t, s in synced.items()}
        assert set(states.values()) == {"syncing"}, [
            x for x in states.items() if x[1] != "syncing"
        ][:3]
        lifecycle = simulator.state.lifecycle
        for status in synced.values():
            r = status.request
            task = simulator.state.task(r.project_id, r.instance_id, r.task_name)
            assert task is not None and task.check is not None, r.task_name
            assert task.check.tables_configs == SELECTION["tables_configs"]
            fate = lifecycle.fate((r.project_id, r.instance_id, r.task_name))
            assert fate is not None and fate.started
        faults = simulator.state.faults_injected()
        assert faults.get("created_then_500", 0) > 0 and faults.get("drop_after_create", 0) > 0
        task_calls = simulator.state.snapshot()["task_calls"]
        # At least one check per task (retries of checks that created nothing add more); no
        # task configured twice is the creates_for proof above.
        assert task_calls["table-config-check"] >= COUNT, task_calls
        assert "database-config-check" not in task_calls
