"""Tests of the simulator's seeded faults and latency on create and list, and of its state
(no network)."""

from __future__ import annotations

import json
import threading
import time

from htap_sync.simulator import SimulatorConfig, SimulatorState, make_app
from htap_sync.simulator.config import FAULT_RATE_FIELDS
from htap_sync.simulator.faults import FAULT_OF_RATE, CreateFault, Faults
from htap_sync.simulator.state import Task
from tests.unit.sim_app import (
    INSTANCE,
    PATH,
    PROJECT,
    SOURCE,
    AppClient,
    assert_error,
    body,
    client_for,
)

# --- faults -------------------------------------------------------------------------------


def test_fail_rate_one_fails_every_valid_create_before_creating() -> None:
    """With fail_rate=1 every valid create is 500 DBS.108000 and nothing is stored."""
    client, state = client_for(SimulatorConfig(fail_rate=1.0))
    for _ in range(3):
        message = assert_error(client.post(PATH, json=body()), 500, "DBS.108000")
        assert message == "Internal server error."
    assert (state.create_calls, state.created) == (3, 0)
    assert state.tasks(PROJECT, INSTANCE) == []
    assert state.create_answers() == {500: 3}


def test_faults_do_not_hide_client_errors() -> None:
    """An invalid body gets its 400 even when every create would fail."""
    client, _ = client_for(SimulatorConfig(fail_rate=1.0))
    assert_error(client.post(PATH, json=body(task_name="x")), 400, "DBS.280001")


def statuses(config: SimulatorConfig, calls: int) -> list[int]:
    """Status codes of ``calls`` creates with distinct task names."""
    client, _ = client_for(config)
    return [
        client.post(PATH, json=body(task_name=f"task_{n:03d}")).status_code for n in range(calls)
    ]


def test_fail_rate_is_reproducible_by_seed() -> None:
    """The same seed gives the same 200/500 sequence; the rate is roughly honoured."""
    first = statuses(SimulatorConfig(fail_rate=0.3, seed=1234), 60)
    assert first == statuses(SimulatorConfig(fail_rate=0.3, seed=1234), 60)
    assert set(first) == {200, 500}
    assert 8 <= first.count(500) <= 30  # seeded, so this is a fixed number, not a flake


def test_failed_create_can_be_retried() -> None:
    """A 500 created nothing: retrying the same task name later succeeds, once."""
    client, state = client_for(SimulatorConfig(fail_rate=0.5, seed=7))
    answers = [client.post(PATH, json=body()).status_code]
    assert answers == [500]  # seed 7 fails the first call; the rest of the test needs that
    assert state.tasks(PROJECT, INSTANCE) == []
    while 200 not in answers:
        answers.append(client.post(PATH, json=body()).status_code)
        assert len(answers) < 50
    assert state.creates_for(PROJECT, INSTANCE, "task_orders_001") == 1
    assert len(state.tasks(PROJECT, INSTANCE)) == 1


def test_faults_draw_once_per_call() -> None:
    """Faults stacks its rates on one seeded draw: 0 never fails, 1 always fails."""
    never = Faults(SimulatorConfig(fail_rate=0.0, seed=1))
    always = Faults(SimulatorConfig(fail_rate=1.0, seed=1))
    assert {never.create_fault() for _ in range(200)} == {CreateFault.NONE}
    assert {always.create_fault() for _ in range(200)} == {CreateFault.FAIL}


def test_every_rate_field_has_a_fault() -> None:
    """Each fault rate in the config maps to a fault kind (guards later additions)."""
    assert set(FAULT_RATE_FIELDS) == set(FAULT_OF_RATE)


def test_latency_is_applied_to_create_and_list() -> None:
    """latency_ms makes create and list await the injected sleep once each, in seconds."""
    slept: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(seconds)

    state = SimulatorState()
    client = AppClient(make_app(SimulatorConfig(latency_ms=250), state, sleep=record))
    client.post(PATH, json=body())
    client.get(PATH)
    client.get("/_sim/stats")
    assert slept == [0.25, 0.25]


def test_no_latency_means_no_sleep() -> None:
    """With latency_ms=0 the sleep is never awaited."""
    slept: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(seconds)

    client = AppClient(make_app(SimulatorConfig(), SimulatorState(), sleep=record))
    client.post(PATH, json=body())
    assert slept == []


def test_real_latency_delays_the_answer() -> None:
    """With the default sleep, a create takes at least latency_ms."""
    client, _ = client_for(SimulatorConfig(latency_ms=50))
    started = time.monotonic()
    client.post(PATH, json=body())
    assert time.monotonic() - started >= 0.045  # 5 ms slack for the event loop's clock


# --- state --------------------------------------------------------------------------------


def make_task(name: str, instance: str = INSTANCE) -> Task:
    """A task with fixed fields and the given name."""
    return Task(PROJECT, instance, name, SOURCE, None, "src_db", "tgt_db", "0" * 32)


def test_creates_for_counts_every_creation() -> None:
    """A task created, deleted and created again counts 2: the counter proves exactly-once."""
    state = SimulatorState()
    assert state.create_task(make_task("task_a"))
    assert not state.create_task(make_task("task_a"))
    assert state.delete_task(PROJECT, INSTANCE, "task_a") is not None
    assert state.create_task(make_task("task_a"))
    assert state.creates_for(PROJECT, INSTANCE, "task_a") == 2
    assert state.created == 2
    assert len(state.tasks(PROJECT, INSTANCE)) == 1
    assert state.snapshot()["created_more_than_once"] == [
        {"project_id": PROJECT, "instance_id": INSTANCE, "task_name": "task_a", "creates": 2}
    ]


def test_concurrent_creates_of_one_name_create_once() -> None:
    """Many threads racing to create the same task: exactly one wins."""
    state = SimulatorState()
    barrier = threading.Barrier(16)
    results: list[bool] = []
    lock = threading.Lock()

    def race() -> None:
        barrier.wait(timeout=10)
        won = state.create_task(make_task("task_race"))
        with lock:
            results.append(won)

    threads = [threading.Thread(target=race) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(results) == [False] * 15 + [True]
    assert state.creates_for(PROJECT, INSTANCE, "task_race") == 1


def test_snapshot_is_json() -> None:
    """snapshot() survives a JSON round trip unchanged."""
    state = SimulatorState()
    state.record_create_call()
    state.record_create_answer(200)
    state.create_task(make_task("task_a"))
    snapshot = state.snapshot()
    assert json.loads(json.dumps(snapshot)) == snapshot
    assert snapshot["tasks"] == 1
