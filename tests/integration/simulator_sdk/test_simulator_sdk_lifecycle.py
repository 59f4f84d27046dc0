"""The official SDK against the simulator's lifecycle routes over loopback, signed with AK/SK:
both configuration checks, the start by the create call, the configuration by task name and by
database, modify with its job, pause, resume, delete, database-parameters and databases."""

from __future__ import annotations

import json

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkgaussdb.v3 import (
    CheckDataBaseConfigRequest,
    CheckTableConfigRequest,
    DbConfig,
    DbConfigCheckRequestV3,
    DeleteStarRocksDataReplication,
    DeleteStarRocksDataReplicationRequest,
    GaussDBClient,
    ListStarRocksDataBasesRequest,
    ListStarRocksDataReplicationConfigByDataBaseRequest,
    ListStarRocksDataReplicationConfigRequest,
    ListStarRocksDataReplicationsRequest,
    ListStarRocksDbParametersRequest,
    ModifyDataSyncConfigRequestV3,
    ModifyDataSyncRequest,
    PauseStarRocksDataReplication,
    PauseStarRocksDataReplicationRequest,
    ResumeStarRocksDataReplication,
    ResumeStarRocksDataReplicationRequest,
    ShowGaussMySqlJobInfoRequest,
    TableConfigCheckRequestV3,
    TableReplConfig,
    TablesConfig,
)

from htap_sync.simulator import SimulatorConfig, SimulatorServer
from tests.integration.simulator_sdk.sdk_rig import (
    AK,
    HEX32,
    INSTANCE,
    MISSING_INSTANCE,
    PROJECT,
    SK,
    SOURCE,
    SteppedClock,
    create_request,
    sdk_client,
)

pytestmark = pytest.mark.integration

NAME = "task_orders_001"
DB_CONFIGS = [
    DbConfig(param_name="binlog_expire_logs_seconds", value="0"),
    DbConfig(param_name="max_full_sync_task_threads_num", value="4"),
]
TABLES = TableReplConfig(repl_type="include_tables", repl_scope="part", tables=["tenant"])
TABLE_CONFIGS = [TablesConfig(table_name="tenant", table_config="order by tenant_name")]


def _stage(client: GaussDBClient, name: str = NAME) -> tuple[str, str, str]:
    listed = client.list_star_rocks_data_replications(
        ListStarRocksDataReplicationsRequest(instance_id=INSTANCE, limit="100", offset="0")
    )
    (row,) = [r for r in listed.replications if r.task_name == name]
    return row.stage, row.status, row.percentage


def _job_status(client: GaussDBClient, job_id: str) -> str:
    job = client.show_gauss_my_sql_job_info(ShowGaussMySqlJobInfoRequest(id=job_id)).job
    return str(job.status)


def _database_check(name: str = NAME, instance_id: str = INSTANCE) -> CheckDataBaseConfigRequest:
    return CheckDataBaseConfigRequest(
        instance_id=instance_id,
        x_language="en-us",
        body=DbConfigCheckRequestV3(
            source_instance_id=SOURCE,
            source_database_name="src_db",
            target_database_name="tgt_db",
            task_name=name,
            db_configs=DB_CONFIGS,
            table_repl_config=TABLES,
        ),
    )


def _table_check(name: str, *, create: str) -> CheckTableConfigRequest:
    return CheckTableConfigRequest(
        instance_id=INSTANCE,
        body=TableConfigCheckRequestV3(
            source_instance_id=SOURCE,
            source_database_name="src_db",
            target_database_name="tgt_db",
            task_name=name,
            db_configs=DB_CONFIGS,
            tables_configs=TABLE_CONFIGS,
            table_repl_config=TABLES,
            is_create_task=create,
        ),
    )


def test_sdk_creates_a_configured_task_in_two_phases() -> None:
    """Database check (no job id), Wait until started, configuration read back, the create call
    starts it with a job, then Full and Incremental on the injected clock."""
    clock = SteppedClock()
    config = SimulatorConfig(ak=AK, sk=SK, stage_wait_s=10, stage_full_s=10)
    with SimulatorServer(config, monotonic=clock) as server:
        client = sdk_client(server)
        checked = client.check_data_base_config(_database_check())
        assert checked.task_name == NAME
        assert [r.check_result for r in checked.source_db_config_check_results] == ["success"] * 2
        assert "job_id" not in json.loads(checked.raw_content)
        clock.now += 30
        assert _stage(client) == ("Wait", "Yes", "0")

        got = client.list_star_rocks_data_replication_config(
            ListStarRocksDataReplicationConfigRequest(instance_id=INSTANCE, task_name=NAME)
        )
        assert got.target_database_name == "tgt_db" and got.last_error_of_alter_table == ""
        assert got.table_repl_config.tables == ["tenant"]
        # The live camelCase keys: the SDK's own names stay empty, the raw answer has them.
        raw = json.loads(got.raw_content)["database_info"]
        assert raw["databaseName"] == "src_db" and len(raw["dbCfgCheckResults"]) == 2
        assert got.database_info.database_name is None

        job_id = client.create_star_rocks_data_replication(create_request()).job_id
        assert HEX32.fullmatch(job_id)
        clock.now += 10
        assert (_stage(client), _job_status(client, job_id)) == (("Full", "Yes", "50"), "Completed")
        clock.now += 10
        assert _stage(client) == ("Incremental", "Yes", "100")
        assert server.state.creates_for(PROJECT, INSTANCE, NAME) == 1


def test_sdk_table_check_and_configuration_by_database(server: SimulatorServer) -> None:
    """The table check only checks without is_create_task, creates with it; the configuration
    by target database reads the task back; an unknown database or instance is refused."""
    client = sdk_client(server)
    only = client.check_table_config(_table_check("task_check_only", create="false"))
    assert [r.check_result for r in only.tbl_config_check_results] == ["success"]
    assert server.state.tasks(PROJECT, INSTANCE) == []
    created = client.check_table_config(_table_check(NAME, create="true"))
    assert created.task_name == NAME
    by_db = client.list_star_rocks_data_replication_config_by_data_base(
        ListStarRocksDataReplicationConfigByDataBaseRequest(instance_id=INSTANCE, database="tgt_db")
    )
    assert [t.table_name for t in by_db.table_infos] == ["tenant"]
    assert by_db.table_repl_config.repl_scope == "part"
    with pytest.raises(ClientRequestException) as unknown:
        client.list_star_rocks_data_replication_config_by_data_base(
            ListStarRocksDataReplicationConfigByDataBaseRequest(
                instance_id=INSTANCE, database="nope_db"
            )
        )
    assert (unknown.value.status_code, unknown.value.error_code) == (400, "DBS.270022")
    with pytest.raises(ClientRequestException) as missing:
        client.check_data_base_config(_database_check(instance_id=MISSING_INSTANCE))
    assert (missing.value.status_code, missing.value.error_code) == (400, "DBS.200022")


def test_sdk_modifies_pauses_resumes_and_deletes() -> None:
    """Modify answers a job Running then Completed; pause, resume and delete answer jobs, a busy
    task answers 409 DBS.200019, a deleted one DBS.05000091."""
    clock = SteppedClock()
    with SimulatorServer(SimulatorConfig(ak=AK, sk=SK, op_job_s=2), monotonic=clock) as server:
        client = sdk_client(server)
        client.create_star_rocks_data_replication(create_request())
        modified = client.modify_data_sync(
            ModifyDataSyncRequest(
                instance_id=INSTANCE,
                body=ModifyDataSyncConfigRequestV3(
                    source_instance_id=SOURCE,
                    source_database_name="src_db",
                    target_database_name="tgt_db",
                    task_name=NAME,
                    db_configs=DB_CONFIGS,
                    table_repl_config=TABLES,
                    is_instance_level_sync="false",
                    database_repl_scope="part",
                    is_support_reg_exp="false",
                ),
            )
        )
        assert modified.task_name == NAME and _job_status(client, modified.job_id) == "Running"
        name_body = PauseStarRocksDataReplication(task_name=NAME)
        with pytest.raises(ClientRequestException) as in_progress:
            client.pause_star_rocks_data_replication(
                PauseStarRocksDataReplicationRequest(instance_id=INSTANCE, body=name_body)
            )
        assert (in_progress.value.status_code, in_progress.value.error_code) == (409, "DBS.200019")
        clock.now += 2
        assert _job_status(client, modified.job_id) == "Completed"

        client.pause_star_rocks_data_replication(
            PauseStarRocksDataReplicationRequest(instance_id=INSTANCE, body=name_body)
        )
        clock.now += 2
        assert _stage(client)[0] == "Paused"
        client.resume_star_rocks_data_replication(
            ResumeStarRocksDataReplicationRequest(
                instance_id=INSTANCE, body=ResumeStarRocksDataReplication(task_name=NAME)
            )
        )
        clock.now += 2
        assert _stage(client)[0] == "Incremental"
        delete = DeleteStarRocksDataReplicationRequest(
            instance_id=INSTANCE, body=DeleteStarRocksDataReplication(task_name=NAME)
        )
        assert HEX32.fullmatch(client.delete_star_rocks_data_replication(delete).job_id)
        assert server.state.tasks(PROJECT, INSTANCE) == []
        clock.now += 2
        with pytest.raises(ClientRequestException) as gone:
            client.delete_star_rocks_data_replication(delete)
        assert (gone.value.status_code, gone.value.error_code) == (400, "DBS.05000091")


def test_sdk_reads_parameters_and_databases(server: SimulatorServer) -> None:
    """The SDK's parameters request sends no limit: one row (limit defaults to 1). Databases
    page with limit and offset, match a name fuzzily, and count 0."""
    client = sdk_client(server)
    parameters = client.list_star_rocks_db_parameters(
        ListStarRocksDbParametersRequest(instance_id=INSTANCE)
    )
    assert [p.param_name for p in parameters.db_parameters] == ["binlog_expire_logs_seconds"]
    assert parameters.db_parameters[0].is_modifiable == "true"
    for n, target in enumerate(["sales_db", "orders_db"]):
        client.create_star_rocks_data_replication(
            create_request(task_name=f"task_{n:03d}", target_database=target)
        )
    listed = client.list_star_rocks_data_bases(
        ListStarRocksDataBasesRequest(instance_id=INSTANCE, limit="100", offset="0")
    )
    assert (listed.databases, listed.total_count) == (["orders_db", "sales_db"], 0)
    fuzzy = client.list_star_rocks_data_bases(
        ListStarRocksDataBasesRequest(instance_id=INSTANCE, database_name="SALES")
    )
    assert fuzzy.databases == ["sales_db"]
