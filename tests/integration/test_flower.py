"""`htap-sync flower`: a real Flower process on the fleet's broker sees its workers and tasks."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from htap_sync.common.settings import Settings
from htap_sync.devstack import Service, free_port, http_ready, wait_until
from htap_sync.producer.api import Producer
from htap_sync.simulator import SimulatorConfig
from tests.conftest import request_data
from tests.integration.conftest import WorkerFactory
from tests.integration.harness import TOKEN, child_env, wait_for

pytest.importorskip("flower", reason="the flower extra is part of the test extra")

UNKNOWN = "f" * 36  # the simulator answers 400 for this instance
LOGIN = ("ops", "flower-test-password")
FlowerFactory = Callable[..., tuple[Service, str]]


@pytest.fixture
def sim_config() -> SimulatorConfig:
    """A simulator that knows no instance ffff...ffff (its creates answer 400)."""
    return SimulatorConfig(token=TOKEN, seed=11, unknown_instances=frozenset({UNKNOWN}))


@pytest.fixture
def start_flower(settings: Settings, tmp_path: Path) -> Iterator[FlowerFactory]:
    """Start `htap-sync flower` processes on free ports; each is stopped after the test."""
    started: list[Service] = []

    def start(*args: str, **env: str) -> tuple[Service, str]:
        port = free_port()
        argv = [sys.executable, "-m", "htap_sync", "flower", "--port", str(port), *args]
        service = Service(
            f"flower-{len(started)}", argv, env=child_env(settings, **env), log_dir=tmp_path
        )
        started.append(service)
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            if not service.alive():
                pytest.fail(f"flower exited:\n{service.log_tail()}")
            return http_ready(f"{url}/healthcheck")

        wait_until(ready, timeout_s=60, what="flower")
        return service, url

    yield start
    for service in started:
        assert service.stop() in (0, -15), service.log_tail()


def _tasks(url: str) -> dict[str, dict[str, Any]]:
    answer = httpx.get(f"{url}/api/tasks", auth=LOGIN, timeout=10)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


@pytest.mark.timeout(150)
def test_flower_shows_the_worker_and_each_task_with_its_tickets_outcome(
    producer: Producer, start_worker: WorkerFactory, start_flower: FlowerFactory
) -> None:
    """Flower on the fleet's settings lists the worker and every task: SUCCESS for a created
    ticket, FAILURE with the ticket's error for one the API refused (400)."""
    worker = start_worker(concurrency=2)
    _, url = start_flower("--api", FLOWER_BASIC_AUTH=":".join(LOGIN))
    # Flower turns task events on remotely; tasks run before that would never reach it.
    wait_until(
        lambda: "enabled by remote" in worker.log_tail(200),
        timeout_s=60,
        what="task events turned on by Flower",
    )

    def workers() -> dict[str, Any]:
        answer = httpx.get(f"{url}/api/workers", params={"refresh": 1}, auth=LOGIN, timeout=15)
        return dict(answer.json()) if answer.status_code == 200 else {}

    wait_until(
        lambda: any(n.startswith("worker-0-") for n in workers()),
        timeout_s=30,
        what="the worker in Flower",
    )
    good = [producer.enqueue(request_data(task_name=f"flower_ok_{i}")) for i in range(4)]
    bad = [
        producer.enqueue(request_data(task_name=f"flower_bad_{i}", instance_id=UNKNOWN))
        for i in range(2)
    ]
    statuses = wait_for(producer, [r.ticket for r in good + bad], workers=[worker])
    assert [statuses[r.ticket].state.value for r in bad] == ["failed", "failed"]

    def by_ticket() -> dict[str, dict[str, Any]]:
        found = {}
        for task in _tasks(url).values():
            ticket = re.search(r"tk_[0-9a-f]{32}", str(task["kwargs"]))
            assert ticket is not None, task
            found[ticket.group(0)] = task
        return found

    wait_until(
        lambda: (
            {t["state"] for t in by_ticket().values()} <= {"SUCCESS", "FAILURE"}
            and len(by_ticket()) == 6
        ),
        timeout_s=30,
        what="six finished tasks in Flower",
    )
    tasks = by_ticket()
    assert {tasks[r.ticket]["state"] for r in good} == {"SUCCESS"}
    for receipt in bad:
        task = tasks[receipt.ticket]
        error = statuses[receipt.ticket].error
        assert error is not None and error.error_code
        assert task["state"] == "FAILURE"
        assert "TicketFailed" in task["exception"] and error.error_code in task["exception"]
    assert {t["worker"] for t in tasks.values()} <= set(workers())


def test_flower_asks_for_its_login_and_keeps_the_api_off_unless_asked(
    start_flower: FlowerFactory,
) -> None:
    """With a basic login, pages need it; without --api, /api/ answers 404 in the product's
    error shape even to a logged-in user."""
    service, url = start_flower(FLOWER_BASIC_AUTH=":".join(LOGIN))
    assert httpx.get(f"{url}/workers", timeout=10).status_code == 401
    assert httpx.get(f"{url}/workers", auth=LOGIN, timeout=10).status_code == 200
    off = httpx.get(f"{url}/api/workers", auth=LOGIN, timeout=10)
    assert off.status_code == 404
    (error,) = off.json()["errors"]
    assert error["field"] == "path" and "--api" in error["rule"]
    assert LOGIN[1] not in service.log_tail(200)


def test_flower_refuses_a_malformed_login() -> None:
    """A login without a password stops the command with a usage error, never echoing it."""
    done = subprocess.run(
        [sys.executable, "-m", "htap_sync", "flower", "--port", "0"],
        env=child_env(None, FLOWER_BASIC_AUTH="ops-without-password"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "user:password" in done.stderr and "ops-without-password" not in done.stderr


def test_flower_stops_at_once_on_sigterm_while_redis_is_down(
    start_flower: FlowerFactory, tmp_path: Path
) -> None:
    """Its Redis gone while it runs (its threads in kombu's connection retries), Flower still
    ends within seconds of SIGTERM, exit 0, not minutes later."""
    import signal
    import time

    from htap_sync.devstack import RedisServer

    own = RedisServer(tmp_path).wait_ready()  # a Redis of this test's own, to stop
    try:
        service, _ = start_flower(HTAP_SYNC_REDIS_URL=own.url)
        time.sleep(3)  # connected: its events thread and its inspects
    finally:
        own.stop()
    time.sleep(8)  # now retrying the broker
    started = time.monotonic()
    service.process.send_signal(signal.SIGTERM)
    code = service.process.wait(timeout=180)
    assert time.monotonic() - started < 5, service.log_tail()
    assert code == 0, service.log_tail()
