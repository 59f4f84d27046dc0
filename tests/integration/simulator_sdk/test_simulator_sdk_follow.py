"""The simulator over loopback: IAM login and token expiry, Nagle off, and the SDK following
a task through its routes on an injected clock."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkgaussdb.v3 import (
    ListStarRocksDataReplicationsRequest,
)

from htap_sync.simulator import SimulatorConfig, SimulatorServer
from tests.integration.simulator_sdk.sdk_rig import (
    AK,
    CREATE_PATH,
    HEX32,
    INSTANCE,
    PROJECT,
    SK,
    SteppedClock,
    create_body,
    create_request,
    sdk_client,
)

pytestmark = pytest.mark.integration

# --- IAM login ------------------------------------------------------------------------------


def test_iam_login_over_loopback_and_token_expiry() -> None:
    """Over loopback: log in with plain httpx, use the token, see it expire, log in again."""
    now = [datetime(2026, 11, 28, 14, 0, tzinfo=UTC)]
    config = SimulatorConfig(
        iam_domain="acme_account", iam_user="sync_bot", iam_password="Pa55-word!"
    )
    login = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "domain": {"name": "acme_account"},
                        "name": "sync_bot",
                        "password": "Pa55-word!",
                    }
                },
            },
            "scope": {"project": {"id": PROJECT}},
        }
    }
    with (
        SimulatorServer(config, clock=lambda: now[0]) as running,
        httpx.Client(base_url=running.url, timeout=5.0, trust_env=False) as client,
    ):
        issued = client.post("/v3/auth/tokens", json=login)
        assert issued.status_code == 201, issued.text
        assert issued.json()["token"]["expires_at"] == "2026-11-29T14:00:00.000000Z"
        token = issued.headers["X-Subject-Token"]
        headers = {"X-Auth-Token": token}
        created = client.post(CREATE_PATH, json=create_body("task_iam_1"), headers=headers)
        assert created.status_code == 200, created.text

        now[0] += timedelta(days=1)
        expired = client.get(CREATE_PATH, headers=headers)
        assert (expired.status_code, expired.json()["error_code"]) == (401, "APIGW.0301")
        assert expired.json()["error_msg"].endswith(": token expired")

        renewed = client.post("/v3/auth/tokens", json=login).headers["X-Subject-Token"]
        assert renewed != token
        listed = client.get(CREATE_PATH, headers={"X-Auth-Token": renewed})
        assert listed.json()["total_count"] == "1"
        wrong = client.post("/v3/auth/tokens", json={**login, "auth": {}})
        assert wrong.status_code == 400
    assert (running.state.logins, running.state.login_failures) == (2, 1)
    assert running.state.expired_token_rejections == 1


def test_the_simulator_socket_disables_nagle() -> None:
    """Its socket is TCP with TCP_NODELAY, so keep-alive answers do not wait for delayed ACKs
    (a ~40 ms stall per call that once halved every throughput measured through it)."""
    with SimulatorServer(SimulatorConfig()) as server:
        listener = server._socket
        assert listener is not None
        assert listener.proto == socket.IPPROTO_TCP
        assert listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_sdk_follows_a_task_through_its_routes(server: SimulatorServer) -> None:
    """The SDK as a client: list paging, jobs, configuration, pause, resume and delete."""
    from huaweicloudsdkgaussdb.v3 import (
        DeleteStarRocksDataReplication,
        DeleteStarRocksDataReplicationRequest,
        ListStarRocksDataReplicationConfigRequest,
        PauseStarRocksDataReplication,
        PauseStarRocksDataReplicationRequest,
        ResumeStarRocksDataReplication,
        ResumeStarRocksDataReplicationRequest,
        ShowGaussMySqlJobInfoRequest,
    )

    client = sdk_client(server)
    jobs = [
        client.create_star_rocks_data_replication(create_request(task_name=f"task_{n:03d}")).job_id
        for n in range(3)
    ]
    page = client.list_star_rocks_data_replications(
        ListStarRocksDataReplicationsRequest(instance_id=INSTANCE, limit="2", offset="2")
    )
    assert page.total_count == "3" and [r.task_name for r in page.replications] == ["task_002"]

    job = client.show_gauss_my_sql_job_info(ShowGaussMySqlJobInfoRequest(id=jobs[0])).job
    assert (job.id, job.status) == (jobs[0], "Completed")

    config = client.list_star_rocks_data_replication_config(
        ListStarRocksDataReplicationConfigRequest(instance_id=INSTANCE, task_name="task_000")
    )
    assert config.target_database_name == "tgt_db"
    with pytest.raises(ClientRequestException) as raised:
        client.list_star_rocks_data_replication_config(
            ListStarRocksDataReplicationConfigRequest(instance_id=INSTANCE, task_name="absent")
        )
    assert (raised.value.status_code, raised.value.error_code) == (400, "DBS.270022")

    paused = client.pause_star_rocks_data_replication(
        PauseStarRocksDataReplicationRequest(
            instance_id=INSTANCE, body=PauseStarRocksDataReplication(task_name="task_000")
        )
    )
    assert HEX32.fullmatch(paused.job_id)
    assert server.state.lifecycle.row((PROJECT, INSTANCE, "task_000"))["stage"] == "Paused"
    client.resume_star_rocks_data_replication(
        ResumeStarRocksDataReplicationRequest(
            instance_id=INSTANCE, body=ResumeStarRocksDataReplication(task_name="task_000")
        )
    )
    assert server.state.lifecycle.row((PROJECT, INSTANCE, "task_000"))["stage"] == "Incremental"
    deleted = client.delete_star_rocks_data_replication(
        DeleteStarRocksDataReplicationRequest(
            instance_id=INSTANCE, body=DeleteStarRocksDataReplication(task_name="task_000")
        )
    )
    assert HEX32.fullmatch(deleted.job_id)
    assert [t.task_name for t in server.state.tasks(PROJECT, INSTANCE)] == ["task_001", "task_002"]


def test_sdk_sees_stages_jobs_and_configuration_move_on_the_injected_clock() -> None:
    """Over loopback the SDK meets an unknown job, then Running/Completed, Wait/Full/Incremental."""
    from huaweicloudsdkgaussdb.v3 import (
        ListStarRocksDataReplicationConfigRequest,
        ShowGaussMySqlJobInfoRequest,
    )

    clock = SteppedClock()
    config = SimulatorConfig(ak=AK, sk=SK, stage_wait_s=10, stage_full_s=10, job_appear_delay_s=2)
    with SimulatorServer(config, monotonic=clock) as server:
        client = sdk_client(server)
        job_id = client.create_star_rocks_data_replication(create_request()).job_id

        def stage() -> tuple[str, str, str]:
            listed = client.list_star_rocks_data_replications(
                ListStarRocksDataReplicationsRequest(instance_id=INSTANCE, limit="100", offset="0")
            )
            (row,) = listed.replications
            return row.stage, row.status, row.percentage

        def job() -> tuple[str, str]:
            found = client.show_gauss_my_sql_job_info(ShowGaussMySqlJobInfoRequest(id=job_id)).job
            return found.status, found.process

        with pytest.raises(ClientRequestException) as unknown:
            job()
        assert (unknown.value.status_code, unknown.value.error_code) == (400, "DBS.280001")
        clock.now += 2
        assert (job(), stage()) == (("Running", "50%"), ("Wait", "Yes", "0"))
        clock.now += 8
        assert (job(), stage()) == (("Completed", ""), ("Full", "Yes", "50"))
        clock.now += 10
        assert stage() == ("Incremental", "Yes", "100")
        got = client.list_star_rocks_data_replication_config(
            ListStarRocksDataReplicationConfigRequest(
                instance_id=INSTANCE, task_name="task_orders_001"
            )
        )
        # database_info comes in the live camelCase keys, which the SDK's model does not read.
        assert json.loads(got.raw_content)["database_info"]["databaseName"] == "src_db"
        assert got.table_repl_config.repl_scope == "all"
        assert got.last_error_of_alter_table == ""
        assert server.state.job_call_times() == {(PROJECT, INSTANCE): [500.0, 502.0, 510.0]}
        assert server.state.list_call_times() == {(PROJECT, INSTANCE): [502.0, 510.0, 520.0]}
