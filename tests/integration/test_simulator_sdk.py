"""The simulator over loopback: driven by the official Huawei Cloud SDK (signing included), and
its faults that need a real socket (a dropped connection, a hang, a stop during a hang)."""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkgaussdb.v3 import (
    CreateStarRocksDataReplication,
    CreateStarRocksDataReplicationRequest,
    GaussDBClient,
    ListStarRocksDataReplicationsRequest,
)

from htap_sync.simulator import SimulatorConfig, SimulatorServer
from htap_sync.simulator.server import LOOPBACK

pytestmark = pytest.mark.integration

AK = "QTWAOYTTINDUT2QVKYUC"
SK = "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc"
PROJECT = "0123456789abcdef0123456789abcdef"
INSTANCE = "0f1e2d3c4b5a69788796a5b4c3d2e1f0in17"
MISSING_INSTANCE = "ffffffffffffffffffffffffffffffffin17"
SOURCE = "1a2b3c4d5e6f708192a3b4c5d6e7f809in07"
HEX32 = re.compile(r"[0-9a-f]{32}")
CREATE_PATH = f"/v3/{PROJECT}/instances/{INSTANCE}/starrocks/databases/replication"


@pytest.fixture
def server() -> Iterator[SimulatorServer]:
    """A simulator requiring AK/SK signatures, with one unknown instance."""
    config = SimulatorConfig(ak=AK, sk=SK, unknown_instances=frozenset({MISSING_INSTANCE}))
    with SimulatorServer(config) as running:
        yield running


def sdk_client(server: SimulatorServer, sk: str = SK) -> GaussDBClient:
    """An SDK client pointed at the simulator (plain http:// works as is)."""
    return (
        GaussDBClient.new_builder()
        .with_credentials(BasicCredentials(AK, sk, PROJECT))
        .with_endpoints([server.url])
        .build()
    )


def create_request(
    instance_id: str = INSTANCE, **fields: str
) -> CreateStarRocksDataReplicationRequest:
    """An SDK create request with valid fields, some replaced."""
    values = {
        "source_instance_id": SOURCE,
        "source_database": "src_db",
        "target_database": "tgt_db",
        "task_name": "task_orders_001",
        **fields,
    }
    return CreateStarRocksDataReplicationRequest(
        instance_id=instance_id,
        x_language="en-us",
        body=CreateStarRocksDataReplication(**values),
    )


def test_sdk_create_then_list(server: SimulatorServer) -> None:
    """The SDK's signed create succeeds with a job id and its list call shows the task."""
    client = sdk_client(server)
    response = client.create_star_rocks_data_replication(create_request())
    assert HEX32.fullmatch(response.job_id)
    [task] = server.state.tasks(PROJECT, INSTANCE)
    assert task.job_id == response.job_id
    assert server.state.creates_for(PROJECT, INSTANCE, "task_orders_001") == 1

    listed = client.list_star_rocks_data_replications(
        ListStarRocksDataReplicationsRequest(instance_id=INSTANCE, limit="10", offset="0")
    )
    assert listed.total_count == "1"
    [replication] = listed.replications
    assert (replication.task_name, replication.source_database, replication.target_database) == (
        "task_orders_001",
        "src_db",
        "tgt_db",
    )
    assert (replication.status, replication.stage) == ("Yes", "Incremental")


def test_sdk_invalid_body_is_400(server: SimulatorServer) -> None:
    """The SDK does not validate client-side; the simulator answers 400 DBS.280001."""
    with pytest.raises(ClientRequestException) as raised:
        sdk_client(server).create_star_rocks_data_replication(create_request(task_name="x"))
    error = raised.value
    assert (error.status_code, error.error_code) == (400, "DBS.280001")
    assert error.error_msg.startswith("Invalid parameter: task_name:")
    assert HEX32.fullmatch(error.request_id)
    assert server.state.created == 0


def test_sdk_unknown_instance_is_not_found(server: SimulatorServer) -> None:
    """An instance the simulator does not know answers 400 DBS.200022 through the SDK."""
    with pytest.raises(ClientRequestException) as raised:
        sdk_client(server).create_star_rocks_data_replication(create_request(MISSING_INSTANCE))
    assert (raised.value.status_code, raised.value.error_code) == (400, "DBS.200022")
    assert raised.value.error_msg == "Instance not found."


def test_sdk_duplicate_task_name_is_409(server: SimulatorServer) -> None:
    """Creating the same task name twice through the SDK gets 409 and one task."""
    client = sdk_client(server)
    client.create_star_rocks_data_replication(create_request())
    with pytest.raises(ClientRequestException) as raised:
        client.create_star_rocks_data_replication(create_request())
    assert (raised.value.status_code, raised.value.error_code) == (409, "DBS.280005")
    assert server.state.create_calls == 2
    assert server.state.creates_for(PROJECT, INSTANCE, "task_orders_001") == 1


def test_sdk_wrong_secret_key_is_401(server: SimulatorServer) -> None:
    """A request signed with the wrong SK gets 401 APIGW.0301 and creates nothing."""
    with pytest.raises(ClientRequestException) as raised:
        sdk_client(server, sk=SK[::-1]).create_star_rocks_data_replication(create_request())
    error = raised.value
    assert (error.status_code, error.error_code) == (401, "APIGW.0301")
    assert "signature mismatch" in error.error_msg
    assert SK not in error.error_msg and SK[::-1] not in error.error_msg
    assert HEX32.fullmatch(error.request_id)
    assert (server.state.create_calls, server.state.created) == (1, 0)


def test_server_exposes_url_and_stats(server: SimulatorServer) -> None:
    """The server answers on 127.0.0.1 at .url, and /_sim/stats reflects .state."""
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.url)
    response = httpx.get(f"{server.url}/_sim/stats", trust_env=False)
    assert response.json() == server.state.snapshot()


def test_server_releases_its_port_on_exit() -> None:
    """After the context exits, a new simulator can serve on the very same port."""
    with SimulatorServer() as first:
        port = first.port
        assert httpx.get(f"{first.url}/_sim/healthz", trust_env=False).json() == {"ok": True}
    with SimulatorServer(port=port) as second:
        response = httpx.get(f"{second.url}/_sim/stats", trust_env=False)
        assert response.json()["create_calls"] == 0


def test_server_reports_a_busy_port() -> None:
    """Asking for a port that is already taken fails at start instead of hanging."""
    with SimulatorServer() as first, pytest.raises(OSError):
        SimulatorServer(port=first.port).start()


def test_server_stop_is_idempotent() -> None:
    """stop() twice, or without start(), is harmless."""
    server = SimulatorServer()
    server.stop()
    server.start()
    server.stop()
    server.stop()
    with pytest.raises(RuntimeError):
        _ = server.url


def test_sdk_sees_a_scripted_throttle_then_succeeds(server: SimulatorServer) -> None:
    """A throttle scripted over HTTP reaches the SDK as 429 APIGW.0308; the next call succeeds."""
    scripted = httpx.post(f"{server.url}/_sim/script", json=["throttle:12"], trust_env=False)
    assert scripted.json() == {"script": ["throttle:12"]}
    client = sdk_client(server)
    with pytest.raises(ClientRequestException) as raised:
        client.create_star_rocks_data_replication(create_request())
    assert (raised.value.status_code, raised.value.error_code) == (429, "APIGW.0308")
    assert HEX32.fullmatch(client.create_star_rocks_data_replication(create_request()).job_id)
    assert server.state.faults_injected() == {"throttle": 1}
    assert server.state.creates_for(PROJECT, INSTANCE, "task_orders_001") == 1


# --- faults that need a real connection -----------------------------------------------------


def create_body(task_name: str) -> dict[str, str]:
    """A valid create body for ``task_name``."""
    return {
        "source_instance_id": SOURCE,
        "source_database": "src_db",
        "target_database": "tgt_db",
        "task_name": task_name,
    }


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 5.0) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def raw_exchange(port: int, task_name: str) -> bytes:
    """POST a create over a bare socket; return every byte received until the server closes."""
    payload = json.dumps(create_body(task_name)).encode()
    head = (
        f"POST {CREATE_PATH} HTTP/1.1\r\nHost: {LOOPBACK}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    received = b""
    with socket.create_connection((LOOPBACK, port), timeout=5) as sock:
        sock.sendall(head.encode() + payload)
        while chunk := sock.recv(4096):
            received += chunk
    return received


def test_drop_after_create_closes_without_any_answer(caplog: pytest.LogCaptureFixture) -> None:
    """drop_after_create: the task exists, the server sends zero bytes, and logs no error."""
    with SimulatorServer(SimulatorConfig(drop_after_create_rate=1.0)) as server:
        with (
            httpx.Client(base_url=server.url, timeout=5, trust_env=False) as client,
            pytest.raises(httpx.RemoteProtocolError, match="without sending a response"),
        ):
            client.post(CREATE_PATH, json=create_body("task_a"))
        assert raw_exchange(server.port, "task_b") == b""  # not even a status line
        assert server.state.created == 2
        assert server.state.creates_for(PROJECT, INSTANCE, "task_a") == 1
        assert server.state.faults_injected() == {"drop_after_create": 2}
        assert server.state.create_answers() == {}
        # The server itself carries on.
        assert httpx.get(f"{server.url}/_sim/healthz", trust_env=False).status_code == 200
    # uvicorn would log "ASGI callable returned without starting response." (and try a 500)
    # had the app returned before the server saw the connection close.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_hang_outlasts_a_shorter_client_timeout() -> None:
    """hang: a client timing out before hang_ms sees a read timeout, and nothing was created."""
    with SimulatorServer(SimulatorConfig(hang_rate=1.0, hang_ms=2000)) as server:
        with (
            httpx.Client(base_url=server.url, timeout=0.1, trust_env=False) as client,
            pytest.raises(httpx.ReadTimeout),
        ):
            client.post(CREATE_PATH, json=create_body("task_a"))
        wait_until(lambda: server.state.faults_injected() == {"hang": 1}, "the hang")
        assert server.state.created == 0


def test_scripted_hangs_answer_after_hang_ms() -> None:
    """Scripted over HTTP: hang:200 answers 500 after 200 ms, hang_after_create:200 answers 200."""
    with (
        SimulatorServer() as server,
        httpx.Client(base_url=server.url, timeout=10, trust_env=False) as client,
    ):
        client.post("/_sim/script", json=["hang:200", "hang_after_create:200"])
        for name, status in (("task_a", 500), ("task_b", 200)):
            started = time.monotonic()
            response = client.post(CREATE_PATH, json=create_body(name))
            assert time.monotonic() - started >= 0.19  # 10 ms slack for the loop's clock
            assert response.status_code == status, response.text
        assert [t.task_name for t in server.state.tasks(PROJECT, INSTANCE)] == ["task_b"]


def test_stop_is_prompt_while_a_request_hangs() -> None:
    """A 30 s hang neither blocks other requests nor stop(); the held client gets its answer."""
    server = SimulatorServer(SimulatorConfig(hang_after_create_rate=1.0))  # hang_ms 30 000
    server.start()
    url = server.url
    answers: list[int] = []

    def post() -> None:
        with httpx.Client(base_url=url, timeout=60, trust_env=False) as client:
            answers.append(client.post(CREATE_PATH, json=create_body("task_a")).status_code)

    poster = threading.Thread(target=post)
    poster.start()
    try:
        # Answered while the create is held: the hang does not block the server.
        wait_until(
            lambda: (
                httpx.get(f"{url}/_sim/stats", trust_env=False).json()["faults"]
                == {"hang_after_create": 1}
            ),
            "the hang",
        )
        started = time.monotonic()
    finally:
        server.stop()
    assert time.monotonic() - started < 5
    poster.join(timeout=10)
    assert answers == [200]  # released early, it gets the true answer of its create
    assert server.state.creates_for(PROJECT, INSTANCE, "task_a") == 1


def test_sdk_meets_the_gateway_rate_limit_and_its_runtime_change() -> None:
    """Over the burst the SDK gets 429 APIGW.0308; server.set_rate_limit(None) lifts it at once."""
    # 0.001 calls/s: no token comes back during the test, whatever the machine's speed.
    config = SimulatorConfig(ak=AK, sk=SK, rate_limit_per_s=0.001, rate_limit_burst=2)
    with SimulatorServer(config) as server:
        client = sdk_client(server)
        for name in ("task_a", "task_b"):
            client.create_star_rocks_data_replication(create_request(task_name=name))
        with pytest.raises(ClientRequestException) as raised:
            client.create_star_rocks_data_replication(create_request(task_name="task_c"))
        assert (raised.value.status_code, raised.value.error_code) == (429, "APIGW.0308")
        assert raised.value.error_msg.endswith("limit:0.001,time:1 second")
        server.set_rate_limit(None)
        client.create_star_rocks_data_replication(create_request(task_name="task_c"))
        assert (server.state.created, server.state.throttled_by_limit) == (3, 1)
        assert len(server.state.create_call_times(admitted_only=False)) == 4


def test_rate_limit_changes_over_http() -> None:
    """PUT /_sim/rate-limit limits a running simulator; stats count the calls it throttled."""
    with (
        SimulatorServer() as server,
        httpx.Client(base_url=server.url, timeout=10, trust_env=False) as client,
    ):
        limit = client.put("/_sim/rate-limit", json={"per_s": 0.001, "burst": 1}).json()
        assert limit == {"per_s": 0.001, "burst": 1}
        assert client.post(CREATE_PATH, json=create_body("task_a")).status_code == 200
        throttled = client.post(CREATE_PATH, json=create_body("task_b"))
        assert throttled.status_code == 429, throttled.text
        assert 999 <= int(throttled.headers["Retry-After"]) <= 1000  # the next token, rounded up
        stats = client.get("/_sim/stats").json()
        assert (stats["throttled_by_limit"], stats["created"]) == (1, 1)
        client.put("/_sim/rate-limit", json={"per_s": None})
        assert server.rate_limit is None
        assert client.post(CREATE_PATH, json=create_body("task_b")).status_code == 200


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


class SteppedClock:
    """Monotonic seconds that move only when the test steps them."""

    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


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
        assert (got.database_info.database_name, got.table_repl_config.repl_scope) == (
            "src_db",
            "all",
        )
        assert got.last_error_of_alter_table == ""
        assert server.state.job_call_times() == {(PROJECT, INSTANCE): [500.0, 502.0, 510.0]}
        assert server.state.list_call_times() == {(PROJECT, INSTANCE): [502.0, 510.0, 520.0]}
