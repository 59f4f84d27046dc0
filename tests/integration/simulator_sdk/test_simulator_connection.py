"""The simulator over loopback: faults that need a real connection (drops, hangs, a prompt
stop) and the gateway rate limit."""

from __future__ import annotations

import logging
import threading
import time

import httpx
import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException

from htap_sync.simulator import SimulatorConfig, SimulatorServer
from tests.integration.simulator_sdk.sdk_rig import (
    AK,
    CREATE_PATH,
    INSTANCE,
    PROJECT,
    SK,
    create_body,
    create_request,
    raw_exchange,
    sdk_client,
    wait_until,
)

pytestmark = pytest.mark.integration

# --- faults that need a real connection -----------------------------------------------------


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
