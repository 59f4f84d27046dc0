"""The simulator over loopback, driven by the official Huawei Cloud SDK: creates, lists,
errors, signatures and the server's own lifecycle."""

from __future__ import annotations

import re

import httpx
import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkgaussdb.v3 import (
    ListStarRocksDataReplicationsRequest,
)

from htap_sync.simulator import SimulatorServer
from tests.integration.simulator_sdk.sdk_rig import (
    HEX32,
    INSTANCE,
    MISSING_INSTANCE,
    PROJECT,
    SK,
    create_request,
    sdk_client,
)

pytestmark = pytest.mark.integration


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


def test_the_simulator_command_says_where_it_listens() -> None:
    """`htap-sync simulator --port 0` prints the address and port it took, on stderr, once it
    answers there."""
    import subprocess
    import sys

    argv = [sys.executable, "-m", "htap_sync", "simulator", "--port", "0"]
    with subprocess.Popen(argv, stderr=subprocess.PIPE, text=True) as child:
        try:
            assert child.stderr is not None
            line = child.stderr.readline().strip()
            found = re.fullmatch(r"simulator listening on (http://127\.0\.0\.1:\d+)", line)
            assert found, line
            health = httpx.get(f"{found[1]}/_sim/healthz", trust_env=False, timeout=5)
            assert health.json() == {"ok": True}
        finally:
            child.terminate()
            child.wait(timeout=20)
