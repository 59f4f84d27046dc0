"""Operation tickets share list calls per instance across the fleet (issue #22): N pauses on
one instance, delivered by two worker processes on a real Redis, cost far fewer list calls than
one per task per look round (the provider's way, and ours before: 2 N at the least)."""

from __future__ import annotations

from typing import Any

import pytest

from htap_sync.common.models import TicketState
from htap_sync.producer.api import Producer
from htap_sync.simulator import SimulatorConfig, SimulatorServer
from tests.conftest import request_data
from tests.integration.conftest import WorkerFactory
from tests.integration.harness import TOKEN, wait_for

N = 30


@pytest.fixture
def sim_config() -> SimulatorConfig:
    """Operation jobs run 0.5 s (a pause shows in the list a while after its call)."""
    return SimulatorConfig(token=TOKEN, seed=7, op_job_s=0.5)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Operations look again every 0.5 s; following is quick too."""
    return {"follow_first_s": 0.2, "follow_interval_s": 0.5, "max_attempts": 10}


@pytest.mark.timeout(180)
def test_n_pauses_on_one_instance_share_their_list_calls(
    producer: Producer, simulator: SimulatorServer, start_worker: WorkerFactory
) -> None:
    """Each of N pauses looks before acting and after its call (at least two looks each), yet
    the phase makes at most N / 2 list calls (about one per 0.5 s round); every pause is sent
    once and succeeds."""
    workers = [start_worker(concurrency=4), start_worker(concurrency=4)]
    tickets = [producer.enqueue(request_data(task_name=f"shared_{i}")).ticket for i in range(N)]
    created = wait_for(producer, tickets, workers=workers)
    assert {s.state for s in created.values()} == {TicketState.SUCCEEDED}
    synced = producer.wait(tickets, timeout_s=60, until="synced")  # following is over
    assert all(s.synced for s in synced.values())
    lists_before = simulator.state.list_calls

    receipts = producer.operations.pause(tickets)
    ops = [str(r.ticket) for r in receipts]
    assert all(r.outcome == "queued" for r in receipts)
    done = wait_for(producer, ops, workers=workers, timeout_s=120)
    assert {s.state for s in done.values()} == {TicketState.SUCCEEDED}
    assert not any(s.reconciled for s in done.values())  # each sent its pause, once
    sent = simulator.state.snapshot()["task_calls"].get("pause", 0)
    lists = simulator.state.list_calls - lists_before
    assert sent == N
    assert lists <= N // 2, f"{lists} list calls for {N} pauses (one per task per look: {2 * N})"
