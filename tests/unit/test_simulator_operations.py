"""Operations on a task on the simulator: modify (PUT) with its job, pause, resume and delete
with their jobs and the 409 of a busy task, and the catalogue reads (database-parameters,
starrocks/databases)."""

from __future__ import annotations

from typing import Any

import pytest

from htap_sync.simulator import SimulatorConfig
from htap_sync.simulator.cli import parse
from tests.unit.sim_app import INSTANCE, PATH, PROJECT, assert_error, body
from tests.unit.test_simulator_configured import (
    DB_CONFIGS,
    KEY,
    NAME,
    TABLES,
    check_body,
    config_of,
    rows,
    sim,
)

DATABASES = f"/v3/{PROJECT}/instances/{INSTANCE}/starrocks/databases"
NAME_BODY = {"task_name": NAME}


def modify_body(**overrides: Any) -> dict[str, Any]:
    """A valid modify body: the check body plus is_support_reg_exp."""
    return check_body(**{"is_support_reg_exp": "false", **overrides})


def job(client: Any, job_id: str) -> dict[str, Any]:
    """The jobs API's job."""
    found: dict[str, Any] = client.get(f"/v3/{PROJECT}/jobs", params={"id": job_id}).json()["job"]
    return found


def test_modify_changes_the_configuration_under_a_job() -> None:
    """PUT answers the check results and a job Running then Completed; the configuration then
    shows the new selection and that the tables changed."""
    client, _, clock = sim(op_job_s=3)
    client.post(f"{PATH}/database-config-check", json=check_body())
    client.post(PATH, json=body())
    tables = {"repl_type": "exclude_tables", "repl_scope": "part", "tables": ["audit_log"]}
    answer = client.request("PUT", PATH, json=modify_body(table_repl_config=tables))
    assert answer.status_code == 200, answer.text
    payload = answer.json()
    assert payload["task_name"] == NAME and payload["tbl_config_check_results"] == []
    assert payload["source_db_config_check_results"] == [
        {**c, "check_result": "success"} for c in DB_CONFIGS
    ]
    modify_job = job(client, payload["job_id"])
    assert (modify_job["name"], modify_job["status"]) == ("ModifyDataSync", "Running")
    clock.now += 3
    assert job(client, payload["job_id"])["status"] == "Completed"
    config = config_of(client).json()
    assert (config["table_repl_config"], config["is_tables_change"]) == (tables, True)


def test_modify_of_an_unknown_task_or_with_a_bad_body() -> None:
    """An unknown task is 400 DBS.270022; a bad field is DBS.280001 naming it."""
    client, _, _ = sim()
    assert_error(client.request("PUT", PATH, json=modify_body()), 400, "DBS.270022")
    client.post(PATH, json=body())
    bad = client.request("PUT", PATH, json=modify_body(is_support_reg_exp="yes"))
    assert "is_support_reg_exp" in assert_error(bad, 400, "DBS.280001")
    create_only = client.request("PUT", PATH, json=modify_body(is_create_task="true"))
    assert "is_create_task: unknown field" in assert_error(create_only, 400, "DBS.280001")
    # A plain task takes a modify too: it becomes configured.
    assert client.request("PUT", PATH, json=modify_body()).status_code == 200
    assert config_of(client).json()["table_repl_config"] == TABLES


def test_pause_and_resume_show_once_their_job_completed() -> None:
    """With op_job_s, Paused shows when the pause job ends; resume goes back to Incremental."""
    client, _, clock = sim(op_job_s=2)
    client.post(PATH, json=body())
    paused = client.post(f"{PATH}/pause", json=NAME_BODY).json()["job_id"]
    assert (rows(client)[0]["stage"], job(client, paused)["status"]) == ("Incremental", "Running")
    clock.now += 2
    assert (rows(client)[0]["stage"], job(client, paused)["status"]) == ("Paused", "Completed")
    resumed = client.post(f"{PATH}/resume", json=NAME_BODY).json()["job_id"]
    assert rows(client)[0]["stage"] == "Paused"
    clock.now += 2
    assert (rows(client)[0]["stage"], job(client, resumed)["name"]) == (
        "Incremental",
        "ResumeStarRocksDataReplication",
    )


@pytest.mark.parametrize("second", ["pause", "resume", "delete", "modify"])
def test_an_operation_on_a_busy_task_is_409(second: str) -> None:
    """While an operation job runs, another operation on that task is 409 DBS.200019; after it
    (or on another task) it goes through."""
    client, _, clock = sim(op_job_s=5)
    client.post(PATH, json=body())
    client.post(PATH, json=body(task_name="task_other_002"))
    client.post(f"{PATH}/pause", json=NAME_BODY)

    def call(name: str = NAME) -> Any:
        if second == "delete":
            return client.request("DELETE", PATH, json={"task_name": name})
        if second == "modify":
            return client.request("PUT", PATH, json=modify_body(task_name=name))
        return client.post(f"{PATH}/{second}", json={"task_name": name})

    assert "in progress" in assert_error(call(), 409, "DBS.200019")
    assert call("task_other_002").status_code == 200
    clock.now += 5
    assert call().status_code == 200


def test_delete_removes_a_configured_task_and_is_then_unknown() -> None:
    """DELETE with a body removes the task from the list; again: 400 DBS.05000091."""
    client, state, _ = sim()
    client.post(f"{PATH}/database-config-check", json=check_body())
    deleted = client.request("DELETE", PATH, json=NAME_BODY)
    assert deleted.status_code == 200 and job(client, deleted.json()["job_id"])["status"]
    assert rows(client) == [] and state.creates_for(*KEY) == 1
    assert_error(client.request("DELETE", PATH, json=NAME_BODY), 400, "DBS.05000091")
    assert_error(client.request("DELETE", PATH, json={}), 400, "DBS.280001")


def test_database_parameters_page_one_row_by_default() -> None:
    """limit defaults to 1, as on the live service; limit 100 gives the whole catalogue."""
    client, _, _ = sim()
    first = client.get(f"{PATH}/database-parameters").json()["db_parameters"]
    assert [row["param_name"] for row in first] == ["binlog_expire_logs_seconds"]
    assert set(first[0]) == {
        "param_name",
        "data_type",
        "default_value",
        "value_range",
        "description",
        "is_modifiable",
    }
    every = client.get(f"{PATH}/database-parameters", params={"limit": "100"}).json()
    names = [row["param_name"] for row in every["db_parameters"]]
    assert names[:2] == ["binlog_expire_logs_seconds", "max_full_sync_task_threads_num"]
    page = client.get(f"{PATH}/database-parameters", params={"limit": "100", "offset": "1"})
    assert page.json()["db_parameters"] == every["db_parameters"][1:]
    bad = client.get(f"{PATH}/database-parameters", params={"limit": "101"})
    assert "limit" in assert_error(bad, 400, "DBS.280001")


def test_databases_match_fuzzily_and_count_zero() -> None:
    """The instance's target databases, sorted and paged, name matched as a substring without
    case; total_count is 0 whatever the count (as live)."""
    client, _, _ = sim()
    for n, target in enumerate(["sales_db", "Orders_db", "archive"]):
        client.post(PATH, json=body(task_name=f"task_{n:03d}", target_database=target))
    listed = client.get(DATABASES).json()
    assert listed["databases"] == ["Orders_db", "archive", "sales_db"]
    assert listed["total_count"] == 0 and isinstance(listed["timestamp"], int)
    fuzzy = client.get(DATABASES, params={"database_name": "DB"}).json()["databases"]
    assert fuzzy == ["Orders_db", "sales_db"]
    page = client.get(DATABASES, params={"limit": "1", "offset": "1"}).json()["databases"]
    assert page == ["archive"]
    assert_error(client.get(DATABASES, params={"offset": "-1"}), 400, "DBS.280001")
    other = DATABASES.replace(INSTANCE, "f" * 36)
    assert client.get(other).json()["databases"] == []


def test_cli_options_of_configured_tasks_and_operations() -> None:
    """--alter-error-rate and --op-job-s land in the config (op jobs run 1 s by default)."""
    assert parse([]).config.op_job_s == 1.0
    config = parse(["--alter-error-rate", "0.25", "--op-job-s", "0"]).config
    assert (config.alter_error_rate, config.op_job_s) == (0.25, 0.0)


@pytest.mark.parametrize(
    ("field", "value"),
    [("alter_error_rate", 1.5), ("alter_error_rate", "x"), ("op_job_s", -1), ("op_job_s", "nan")],
)
def test_new_lifecycle_options_are_checked(field: str, value: object) -> None:
    """An out-of-range alter_error_rate or op_job_s is refused, naming the field."""
    with pytest.raises(ValueError, match=field):
        SimulatorConfig(**{field: value})  # type: ignore[arg-type]
