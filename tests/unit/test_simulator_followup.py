"""What a follower of the simulator's tasks meets: seeded fates, the jobs and configuration
answers, and the admin views of tasks and of list and jobs calls per instance."""

from __future__ import annotations

from typing import Any

import pytest

from htap_sync.simulator import RateLimiter, SimulatorConfig, SimulatorState
from htap_sync.simulator.app import make_app
from htap_sync.simulator.cli import main, parse
from tests.unit.sim_app import (
    INSTANCE,
    OTHER_INSTANCE,
    PATH,
    PROJECT,
    AppClient,
    assert_error,
    body,
)
from tests.unit.test_simulator_lifecycle import Clock

OTHER_PATH = PATH.replace(INSTANCE, OTHER_INSTANCE)
OTHER_PROJECT = "f" * 32


def _sim(**config: Any) -> tuple[AppClient, SimulatorState, Clock]:
    clock, state = Clock(), SimulatorState()
    app = make_app(SimulatorConfig(**{"seed": 1, **config}), state, monotonic=clock)
    return AppClient(app), state, clock


def _fates(seed: int, names: list[str]) -> dict[str, str | None]:
    client, state, _ = _sim(seed=seed, sync_fail_rate=0.5)
    for name in names:
        assert client.post(PATH, json=body(task_name=name)).status_code == 200
    return {t["task_name"]: t["failure"] for t in state.tasks_report()}


def test_a_seed_gives_each_task_its_fate_whatever_the_creation_order() -> None:
    """The same seed plans the same fate per task in any order; another seed plans others."""
    names = [f"task_{n:03d}" for n in range(60)]
    forward = _fates(1, names)
    assert _fates(1, list(reversed(names))) == forward
    assert _fates(2, names) != forward
    failed = [name for name, failure in forward.items() if failure]
    assert 0 < len(failed) < len(names)  # rate 0.5: some of each


def test_no_task_fails_at_rate_zero() -> None:
    """With sync_fail_rate 0 every task is planned to sync."""
    client, state, _ = _sim()
    for n in range(20):
        client.post(PATH, json=body(task_name=f"task_{n:02d}"))
    assert {t["planned"] for t in state.tasks_report()} == {"syncing"}


def test_job_calls_are_logged_under_the_instance_of_their_job() -> None:
    """A jobs call is logged with its time under its job's instance; an unknown id under null."""
    client, state, clock = _sim(job_appear_delay_s=5)
    job_a = client.post(PATH, json=body()).json()["job_id"]
    job_b = client.post(OTHER_PATH, json=body()).json()["job_id"]
    client.get(f"/v3/{PROJECT}/jobs", params={"id": job_a})  # not visible yet: still logged
    clock.now += 5
    client.get(f"/v3/{PROJECT}/jobs", params={"id": job_b})
    client.get(f"/v3/{PROJECT}/jobs", params={"id": "nope"})
    assert state.job_call_times() == {
        (PROJECT, INSTANCE): [1000.0],
        (PROJECT, OTHER_INSTANCE): [1005.0],
        (PROJECT, None): [1005.0],
    }
    assert client.get("/_sim/job-calls").json() == {
        "instances": [
            {"project_id": PROJECT, "instance_id": INSTANCE, "times": [1000.0]},
            {"project_id": PROJECT, "instance_id": OTHER_INSTANCE, "times": [1005.0]},
            {"project_id": PROJECT, "instance_id": None, "times": [1005.0]},
        ]
    }
    assert state.list_call_times() == {}


def test_jobs_of_another_project_or_without_id_are_refused() -> None:
    """Another project's job is unknown to it; a missing id or a bad project id names the field."""
    client, _, _ = _sim()
    job_id = client.post(PATH, json=body()).json()["job_id"]
    assert client.get(f"/v3/{PROJECT}/jobs", params={"id": job_id}).status_code == 200
    assert_error(client.get(f"/v3/{OTHER_PROJECT}/jobs", params={"id": job_id}), 400, "DBS.280001")
    assert "id: required" in assert_error(client.get(f"/v3/{PROJECT}/jobs"), 400, "DBS.280001")
    bad = client.get("/v3/short/jobs", params={"id": job_id})
    assert "project_id" in assert_error(bad, 400, "DBS.280001")


def test_a_job_shows_progress_only_while_running() -> None:
    """A running create job has a process and no end; a completed one has an end and no process."""
    client, _, clock = _sim(stage_wait_s=4)
    job_id = client.post(PATH, json=body()).json()["job_id"]
    running = client.get(f"/v3/{PROJECT}/jobs", params={"id": job_id}).json()["job"]
    assert (running["status"], running["ended"]) == ("Running", None) and running["process"]
    assert running["name"] == "CreateStarRocksDataReplication"
    assert running["entities"] == {"task_name": "task_orders_001", "project_id": PROJECT}
    clock.now += 4
    done = client.get(f"/v3/{PROJECT}/jobs", params={"id": job_id}).json()["job"]
    assert (done["status"], done["process"], done["fail_reason"]) == ("Completed", "", None)
    assert done["ended"] >= done["created"]


def test_configuration_has_the_live_fields() -> None:
    """The configuration answer carries every field the SDK's model names, with its values,
    ``database_info`` in the live service's camelCase, and the fields the provider reads."""
    client, _, _ = _sim()
    client.post(PATH, json=body(source_node_id="node_0001"))
    config = client.get(f"{PATH}/configuration", params={"task_name": "task_orders_001"}).json()
    tables = {"repl_type": "exclude_tables", "repl_scope": "all", "tables": []}
    assert config == {
        "source_instance_id": body()["source_instance_id"],
        "source_node_id": "node_0001",
        "database_info": {"databaseName": "src_db", "dbCfgCheckResults": []},
        "table_infos": [],
        "table_repl_config": tables,
        "new_table_repl_config": tables,
        "target_database_name": "tgt_db",
        "is_tables_change": False,
        "last_error_of_alter_table": "",
        "is_instance_level_sync": "false",
        "database_repl_scope": "part",
        "is_support_reg_exp": "false",
    }


def test_accept_mode_starts_a_job_the_jobs_api_finds() -> None:
    """--existing-name accept answers a new job the jobs API knows, and creates nothing."""
    client, state, _ = _sim(existing_name="accept")
    first = client.post(PATH, json=body()).json()["job_id"]
    again = client.post(PATH, json=body()).json()["job_id"]
    job = client.get(f"/v3/{PROJECT}/jobs", params={"id": again}).json()["job"]
    assert (job["name"], job["status"]) == ("StartStarRocksDataReplication", "Completed")
    (task,) = client.get("/_sim/tasks").json()["tasks"]
    assert (task["job_id"], task["creates"], task["name_hits"]) == (first, 1, 1)
    assert state.snapshot()["created_more_than_once"] == []


def test_admin_tasks_shows_each_task_with_its_plan_and_row() -> None:
    """/_sim/tasks gives each task's identity, create job, plan, counts and list row now."""
    client, _, _ = _sim(stage_wait_s=10)
    job_id = client.post(PATH, json=body()).json()["job_id"]
    assert client.get("/_sim/tasks").json() == {
        "tasks": [
            {
                "project_id": PROJECT,
                "instance_id": INSTANCE,
                "task_name": "task_orders_001",
                "job_id": job_id,
                "planned": "syncing",
                "failure": None,
                "creates": 1,
                "name_hits": 0,
                "status": "Yes",
                "stage": "Wait",
                "percentage": "0",
                "is_need_repair": False,
                "is_main_task": True,
            }
        ]
    }


def test_a_deleted_task_leaves_the_report_but_a_recreation_counts_twice() -> None:
    """Deleting then creating a name again shows in created_more_than_once, not in /_sim/tasks."""
    client, state, _ = _sim()
    client.post(PATH, json=body())
    client.request("DELETE", PATH, json={"task_name": "task_orders_001"})
    assert client.get("/_sim/tasks").json() == {"tasks": []}
    client.post(PATH, json=body())
    (task,) = state.tasks_report()
    assert task["creates"] == 2
    assert state.snapshot()["created_more_than_once"] == [
        {
            "project_id": PROJECT,
            "instance_id": INSTANCE,
            "task_name": "task_orders_001",
            "creates": 2,
        }
    ]


def test_stages_follow_the_rate_limiters_clock() -> None:
    """Given a rate limiter, stages, jobs and call logs read its clock."""
    clock, state = Clock(), SimulatorState()
    config = SimulatorConfig(stage_wait_s=3)
    client = AppClient(make_app(config, state, rate_limiter=RateLimiter(clock=clock)))
    client.post(PATH, json=body())
    assert client.get(PATH).json()["replications"][0]["stage"] == "Wait"
    clock.now += 3
    assert client.get(PATH).json()["replications"][0]["stage"] == "Incremental"
    assert state.list_call_times() == {(PROJECT, INSTANCE): [1000.0, 1003.0]}


def test_cli_lifecycle_options_build_the_config() -> None:
    """Each lifecycle option (stages, fail rate, job delay, existing name) lands in the config."""
    argv = ["--stage-wait-s", "3", "--stage-full-s", "4.5", "--sync-fail-rate", "0.2"]
    argv += ["--job-appear-delay-s", "2", "--existing-name", "reject-400"]
    config = parse(argv).config
    assert (config.stage_wait_s, config.stage_full_s, config.sync_fail_rate) == (3, 4.5, 0.2)
    assert (config.job_appear_delay_s, config.existing_name) == (2, "reject-400")


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["--stage-wait-s", "-1"], "stage_wait_s"),
        (["--stage-full-s", "inf"], "stage_full_s"),
        (["--sync-fail-rate", "2"], "sync_fail_rate"),
        (["--job-appear-delay-s", "nan"], "job_appear_delay_s"),
        (["--existing-name", "ignore"], "--existing-name"),
    ],
)
def test_cli_refuses_a_bad_lifecycle_option(
    argv: list[str], field: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad lifecycle option exits 2 naming it, without serving."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert field in capsys.readouterr().err
