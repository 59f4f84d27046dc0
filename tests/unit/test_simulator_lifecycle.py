"""The simulator's task lifecycle: stages over time, failures to sync, jobs, configuration,
delete, pause and resume, and what a second create with an existing name answers."""

from __future__ import annotations

from typing import Any

import pytest

from htap_sync.simulator import SimulatorConfig, SimulatorState
from htap_sync.simulator.app import make_app
from tests.unit.sim_app import INSTANCE, PATH, PROJECT, AppClient, assert_error, body


class Clock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _sim(**config: Any) -> tuple[AppClient, SimulatorState, Clock]:
    clock, state = Clock(), SimulatorState()
    app = make_app(SimulatorConfig(seed=1, **config), state, monotonic=clock)
    return AppClient(app), state, clock


def _row(client: AppClient, name: str = "task_orders_001") -> dict[str, Any]:
    rows = client.get(PATH).json()["replications"]
    (row,) = [r for r in rows if r["task_name"] == name]
    assert isinstance(row, dict)
    return row


def _job(client: AppClient, job_id: str) -> Any:
    return client.get(f"/v3/{PROJECT}/jobs", params={"id": job_id})


def test_stages_move_from_wait_to_full_to_incremental() -> None:
    """A task waits, loads in full, then syncs incrementally, on the injected clock."""
    client, _, clock = _sim(stage_wait_s=5, stage_full_s=10)
    assert client.post(PATH, json=body()).status_code == 200
    seen = []
    for at in (0, 4.9, 5, 14.9, 15):
        clock.now = 1000.0 + at
        row = _row(client)
        seen.append((row["stage"], row["percentage"]))
    assert seen == [
        ("Wait", "0"),
        ("Wait", "0"),
        ("Full", "50"),
        ("Full", "50"),
        ("Incremental", "100"),
    ]
    assert _row(client)["is_main_task"] is True and _row(client)["is_need_repair"] is False


def test_a_new_job_is_unknown_then_running_then_completed() -> None:
    """The jobs API does not know a new job at first, then Running, then Completed."""
    client, _, clock = _sim(stage_wait_s=5, job_appear_delay_s=2)
    job_id = client.post(PATH, json=body()).json()["job_id"]
    assert_error(_job(client, job_id), 400, "DBS.280001")
    clock.now += 2
    job = _job(client, job_id).json()["job"]
    assert (job["id"], job["status"], job["fail_reason"]) == (job_id, "Running", None)
    assert job["instance"]["id"] == INSTANCE
    clock.now += 3
    assert _job(client, job_id).json()["job"]["status"] == "Completed"


def _signals(client: AppClient, name: str, job_id: str) -> list[str]:
    """Which of the four failure signals a task shows now."""
    row = _row(client, name)
    job = _job(client, job_id).json()["job"]
    config = client.get(f"{PATH}/configuration", params={"task_name": name}).json()
    signals = {
        "job_failed": job["status"] == "Failed" and bool(job["fail_reason"]),
        "cancelled": row["stage"] == "Cancelled",
        "status_no": row["status"] == "No",
        "alter_error": bool(config["last_error_of_alter_table"]),
    }
    return [k for k, v in signals.items() if v]


def test_failures_to_sync_show_each_signal_once_the_wait_is_over() -> None:
    """With every task failing, all four signals occur, each as planned, after the wait."""
    client, state, clock = _sim(stage_wait_s=1, sync_fail_rate=1.0)
    names = [f"task_{n:02d}" for n in range(24)]
    jobs = {name: client.post(PATH, json=body(task_name=name)).json()["job_id"] for name in names}
    assert {name: _signals(client, name, jobs[name]) for name in names} == {n: [] for n in names}
    clock.now += 1
    failures = {t["task_name"]: t["failure"] for t in state.tasks_report()}
    assert set(failures.values()) == {"alter_error", "cancelled", "job_failed", "status_no"}
    for name, failure in failures.items():
        # A failed create job also shows in the list, for callers who lost its job id.
        expected = ["job_failed", "status_no"] if failure == "job_failed" else [failure]
        assert _signals(client, name, jobs[name]) == expected, name
        assert _row(client, name)["stage"] not in {"Full", "Incremental"}
    assert {t["planned"] for t in state.tasks_report()} == {"failed"}


def test_configuration_of_an_unknown_task_is_dbs_270022() -> None:
    """The configuration call answers 400 DBS.270022 for a task that does not exist."""
    client, _, _ = _sim()
    response = client.get(f"{PATH}/configuration", params={"task_name": "nothing_here"})
    assert_error(response, 400, "DBS.270022")
    client.post(PATH, json=body())
    config = client.get(f"{PATH}/configuration", params={"task_name": "task_orders_001"}).json()
    assert config["target_database_name"] == "tgt_db" and config["last_error_of_alter_table"] == ""


def test_delete_pause_and_resume_answer_jobs() -> None:
    """Pause shows stage Paused, resume brings it back, delete removes it; each gives a job."""
    client, _, _ = _sim()
    client.post(PATH, json=body())
    name = {"task_name": "task_orders_001"}
    assert "job_id" in client.post(f"{PATH}/pause", json=name).json()
    assert _row(client)["stage"] == "Paused"
    assert "job_id" in client.post(f"{PATH}/resume", json=name).json()
    assert _row(client)["stage"] == "Incremental"
    deleted = client.request("DELETE", PATH, json=name)
    assert deleted.status_code == 200 and "job_id" in deleted.json()
    assert client.get(PATH).json()["replications"] == []
    assert_error(client.request("DELETE", PATH, json=name), 400, "DBS.05000091")
    assert_error(client.post(f"{PATH}/pause", json=name), 400, "DBS.270022")


@pytest.mark.parametrize(
    ("mode", "status"), [("reject-409", 409), ("reject-400", 400), ("accept", 200)]
)
def test_a_second_create_with_an_existing_name(mode: str, status: int) -> None:
    """Each --existing-name mode answers its way, and none creates the task twice."""
    client, state, _ = _sim(existing_name=mode)
    first = client.post(PATH, json=body()).json()["job_id"]
    again = client.post(PATH, json=body())
    assert again.status_code == status
    if mode == "accept":
        assert again.json()["job_id"] != first
    else:
        assert "already exists" in again.json()["error_msg"]
    assert state.creates_for(PROJECT, INSTANCE, "task_orders_001") == 1
    assert state.name_hits(PROJECT, INSTANCE, "task_orders_001") == 1


def test_list_calls_are_logged_per_instance() -> None:
    """Every list call is logged with its time under its instance (for one-per-round checks)."""
    client, state, clock = _sim()
    client.get(PATH)
    clock.now += 10
    client.get(PATH)
    assert state.list_call_times() == {(PROJECT, INSTANCE): [1000.0, 1010.0]}
    calls = client.get("/_sim/list-calls").json()["instances"]
    assert calls == [{"project_id": PROJECT, "instance_id": INSTANCE, "times": [1000.0, 1010.0]}]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("stage_wait_s", -1),
        ("stage_full_s", float("inf")),
        ("sync_fail_rate", 1.5),
        ("job_appear_delay_s", "soon"),
        ("existing_name", "ignore"),
    ],
)
def test_lifecycle_options_are_checked(field: str, value: object) -> None:
    """An out-of-range lifecycle option is refused, naming the field."""
    with pytest.raises(ValueError, match=field):
        SimulatorConfig(**{field: value})  # type: ignore[arg-type]
