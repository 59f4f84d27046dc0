"""Configured creation on the simulator: the two checks create a waiting task (no job id), the
create call starts it, its configuration reads back (camelCase ``database_info``), and a seeded
share of configured tasks shows a ``last_error_of_alter_table``."""

from __future__ import annotations

from typing import Any

import pytest

from htap_sync.simulator import SimulatorConfig, SimulatorState
from htap_sync.simulator.app import make_app
from tests.unit.sim_app import INSTANCE, PATH, PROJECT, SOURCE, AppClient, assert_error, body
from tests.unit.test_simulator_lifecycle import Clock

NAME = "task_orders_001"
KEY = (PROJECT, INSTANCE, NAME)
TABLES = {"repl_type": "include_tables", "repl_scope": "part", "tables": ["tenant", "tenant_db"]}
TABLE_CONFIGS = [
    {"table_name": "tenant", "table_config": "order by tenant_name;key columns tenant_name"},
    {"table_name": "tenant_db", "table_config": "order by tenant_name,db_name"},
]
DB_CONFIGS = [
    {"param_name": "binlog_expire_logs_seconds", "value": "0"},
    {"param_name": "max_full_sync_task_threads_num", "value": "4"},
]


def check_body(**overrides: Any) -> dict[str, Any]:
    """A valid database-check body (the provider's example), some fields replaced or removed."""
    base: dict[str, Any] = {
        "source_instance_id": SOURCE,
        "source_database_name": "src_db",
        "target_database_name": "tgt_db",
        "task_name": NAME,
        "db_configs": DB_CONFIGS,
        "table_repl_config": TABLES,
        "is_instance_level_sync": "false",
        "database_repl_scope": "part",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def table_body(**overrides: Any) -> dict[str, Any]:
    """A valid table-check body that creates the task."""
    return check_body(**{"tables_configs": TABLE_CONFIGS, "is_create_task": "true", **overrides})


def sim(**config: Any) -> tuple[AppClient, SimulatorState, Clock]:
    """A simulator on a stepped clock (seed 1)."""
    clock, state = Clock(), SimulatorState()
    app = make_app(SimulatorConfig(**{"seed": 1, **config}), state, monotonic=clock)
    return AppClient(app), state, clock


def rows(client: AppClient) -> list[dict[str, Any]]:
    """The list call's rows."""
    replications: list[dict[str, Any]] = client.get(PATH).json()["replications"]
    return replications


def config_of(client: AppClient, name: str = NAME) -> Any:
    """The configuration call's answer (or error) for ``name``."""
    return client.get(f"{PATH}/configuration", params={"task_name": name})


def test_database_check_creates_a_waiting_task_without_a_job() -> None:
    """The database check answers task_name and its results, no job id, and creates the task in
    Wait (status Yes, 0 %) however long it waits, until the create call starts it."""
    client, state, clock = sim(stage_wait_s=5, stage_full_s=5)
    answer = client.post(f"{PATH}/database-config-check", json=check_body())
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "source_database_name": "src_db",
        "target_database_name": "tgt_db",
        "source_db_config_check_results": [{**c, "check_result": "success"} for c in DB_CONFIGS],
        "target_db_config_check_results": [],
        "task_name": NAME,
    }
    assert state.creates_for(*KEY) == 1
    clock.now += 60
    (row,) = rows(client)
    assert (row["status"], row["stage"], row["percentage"]) == ("Yes", "Wait", "0")

    started = client.post(PATH, json=body())
    assert started.status_code == 200, started.text
    job = client.get(f"/v3/{PROJECT}/jobs", params={"id": started.json()["job_id"]}).json()["job"]
    assert (job["name"], job["status"]) == ("StartStarRocksDataReplication", "Running")
    clock.now += 5
    assert rows(client)[0]["stage"] == "Full"
    clock.now += 5
    assert (rows(client)[0]["stage"], rows(client)[0]["percentage"]) == ("Incremental", "100")
    assert state.creates_for(*KEY) == 1 and state.name_hits(*KEY) == 0
    # Started once: a second create meets the name as usual.
    assert_error(client.post(PATH, json=body()), 409, "DBS.280005")


def test_table_check_creates_only_when_asked() -> None:
    """Without is_create_task "true" the table check only checks; with it, it creates."""
    client, state, _ = sim()
    checked = client.post(f"{PATH}/table-config-check", json=table_body(is_create_task="false"))
    assert checked.json() == {
        "source_database_name": "src_db",
        "target_database_name": "tgt_db",
        "tbl_config_check_results": [{**c, "check_result": "success"} for c in TABLE_CONFIGS],
        "task_name": NAME,
    }
    assert rows(client) == []
    created = client.post(f"{PATH}/table-config-check", json=table_body())
    assert created.status_code == 200 and "job_id" not in created.json()
    assert [r["task_name"] for r in rows(client)] == [NAME]
    assert state.creates_for(*KEY) == 1


def test_failed_checks_create_nothing() -> None:
    """An unknown parameter or an out-of-range value fails, a table outside the selection
    fails: the answer says which, and no task is created."""
    client, _, _ = sim()
    configs = [{"param_name": "no_such_param", "value": "1"}, DB_CONFIGS[1]]
    db = client.post(f"{PATH}/database-config-check", json=check_body(db_configs=configs))
    results = [r["check_result"] for r in db.json()["source_db_config_check_results"]]
    assert (db.status_code, results) == (200, ["fail", "success"])
    bad_range = [{"param_name": "max_full_sync_task_threads_num", "value": "0"}]
    db = client.post(f"{PATH}/database-config-check", json=check_body(db_configs=bad_range))
    assert db.json()["source_db_config_check_results"][0]["check_result"] == "fail"
    outside = [*TABLE_CONFIGS, {"table_name": "orders", "table_config": "order by id"}]
    table = client.post(f"{PATH}/table-config-check", json=table_body(tables_configs=outside))
    results = [r["check_result"] for r in table.json()["tbl_config_check_results"]]
    assert results == ["success", "success", "failed"]
    assert rows(client) == []


def test_configuration_reads_a_configured_task_back() -> None:
    """By task name and by target database: the selection, results and camelCase database_info."""
    client, _, _ = sim()
    client.post(f"{PATH}/table-config-check", json=table_body(source_node_id="node_0001"))
    config = config_of(client).json()
    assert config["database_info"] == {
        "databaseName": "src_db",
        "dbCfgCheckResults": [{**c, "check_result": "success"} for c in DB_CONFIGS],
    }
    assert config["table_infos"] == [{**c, "check_result": "success"} for c in TABLE_CONFIGS]
    assert config["table_repl_config"] == TABLES
    assert (config["source_instance_id"], config["source_node_id"]) == (SOURCE, "node_0001")
    assert (config["target_database_name"], config["is_tables_change"]) == ("tgt_db", False)
    assert config["last_error_of_alter_table"] == ""
    by_database = client.get(f"{PATH}/configuration/tgt_db")
    assert by_database.json() == config
    assert_error(client.get(f"{PATH}/configuration/src_db"), 400, "DBS.270022")
    assert_error(config_of(client, "absent_task"), 400, "DBS.270022")


def test_a_seeded_share_of_configured_tasks_shows_an_alter_error() -> None:
    """alter_error_rate: some configured tasks carry last_error_of_alter_table at once, the same
    ones for the same seed; started anyway, such a task stays in Wait."""

    def errors(seed: int) -> dict[str, str]:
        client, _, _ = sim(seed=seed, alter_error_rate=0.5)
        names = [f"task_{n:03d}" for n in range(40)]
        for name in names:
            client.post(f"{PATH}/database-config-check", json=check_body(task_name=name))
        return {n: config_of(client, n).json()["last_error_of_alter_table"] for n in names}

    first = errors(1)
    failed = [name for name, error in first.items() if error]
    assert 0 < len(failed) < len(first)
    assert errors(1) == first and errors(2) != first
    client, state, _ = sim(seed=1, alter_error_rate=1.0)
    client.post(f"{PATH}/database-config-check", json=check_body())
    client.post(PATH, json=body())
    assert rows(client)[0]["stage"] == "Wait"
    assert state.tasks_report()[0]["planned"] == "failed"


def test_a_check_of_an_existing_name_creates_nothing() -> None:
    """A check naming a task that exists answers as a create would, and creates nothing."""
    client, state, _ = sim()
    client.post(PATH, json=body())
    again = client.post(f"{PATH}/database-config-check", json=check_body())
    assert_error(again, 409, "DBS.280005")
    assert state.creates_for(*KEY) == 1 and state.name_hits(*KEY) == 1


def test_the_create_call_starts_only_a_configured_task_with_its_databases() -> None:
    """Other databases under the configured name are a name conflict; nothing starts."""
    client, state, _ = sim()
    client.post(f"{PATH}/database-config-check", json=check_body())
    other = client.post(PATH, json=body(target_database="other_db"))
    assert_error(other, 409, "DBS.280005")
    assert rows(client)[0]["stage"] == "Wait"
    assert state.lifecycle.fate(KEY) is not None
    assert not state.lifecycle.fate(KEY).started  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"task_name": "ab"}, "task_name"),
        ({"source_database_name": None}, "source_database_name"),
        ({"target_database_name": "bad-name"}, "target_database_name"),
        ({"source_instance_id": "short"}, "source_instance_id"),
        ({"table_repl_config": None}, "table_repl_config"),
        ({"table_repl_config": {**TABLES, "repl_type": "all"}}, "table_repl_config.repl_type"),
        ({"table_repl_config": {**TABLES, "repl_scope": "x"}}, "table_repl_config.repl_scope"),
        ({"table_repl_config": {**TABLES, "tables": ["a b"]}}, "table_repl_config.tables[0]"),
        ({"db_configs": [{"param_name": "x", "value": ""}]}, "db_configs[0].value"),
        ({"db_configs": [{"param_name": "x-y", "value": "1"}]}, "db_configs[0].param_name"),
        ({"db_configs": "x"}, "db_configs"),
        ({"is_instance_level_sync": True}, "is_instance_level_sync"),
        ({"database_repl_scope": "some"}, "database_repl_scope"),
        ({"is_create_task": "true"}, "is_create_task"),
        ({"source_database": "src_db"}, "source_database"),
    ],
)
def test_a_bad_check_body_names_its_field(changes: dict[str, Any], field: str) -> None:
    """Each broken rule of a database check is 400 DBS.280001 naming the field; nothing made."""
    client, state, _ = sim()
    answer = client.post(f"{PATH}/database-config-check", json=check_body(**changes))
    assert f"Invalid parameter: {field}: " in assert_error(answer, 400, "DBS.280001")
    assert state.created == 0


def test_checks_pass_authentication_instances_and_faults_like_a_create() -> None:
    """Unknown instances are DBS.200022; a scripted fault acts on a check as on a create."""
    client, state, _ = sim(unknown_instances=frozenset({SOURCE}), token="secret")
    headers = {"X-Auth-Token": "secret"}
    denied = client.post(f"{PATH}/database-config-check", json=check_body())
    assert_error(denied, 401, "APIGW.0301")
    missing = client.post(f"{PATH}/database-config-check", json=check_body(), headers=headers)
    assert_error(missing, 400, "DBS.200022")
    client, state, _ = sim()
    state.script(["created_then_500"])
    lost = client.post(f"{PATH}/table-config-check", json=table_body())
    assert_error(lost, 500, "DBS.108000")
    assert state.creates_for(*KEY) == 1 and rows(client)[0]["stage"] == "Wait"
