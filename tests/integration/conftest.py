"""Real parts for integration tests: a redis-server of our own, the simulator, worker processes."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from htap_sync.common.settings import Settings, load_settings
from htap_sync.devstack import RedisServer, Service, stop_all
from htap_sync.producer.api import Producer
from htap_sync.simulator import SimulatorConfig, SimulatorServer
from tests.integration.harness import TOKEN, child_env

pytestmark = pytest.mark.integration


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/integration carries the integration marker."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis the session started itself on a free port, or HTAP_SYNC_TEST_REDIS_URL.

    Tests isolate themselves by key prefix and queue name, so nothing is ever flushed.
    """
    given = os.environ.get("HTAP_SYNC_TEST_REDIS_URL")
    if given:
        yield given
        return
    server = RedisServer(tmp_path_factory.mktemp("redis")).wait_ready()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def sim_config() -> SimulatorConfig:
    """The simulator's configuration; tests override this fixture to inject faults."""
    return SimulatorConfig(token=TOKEN, seed=7)


@pytest.fixture
def simulator(sim_config: SimulatorConfig) -> Iterator[SimulatorServer]:
    """A simulator served over loopback from a thread of the test process."""
    with SimulatorServer(sim_config) as server:
        yield server


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Settings a test module changes (override this fixture)."""
    return {}


@pytest.fixture
def settings(
    redis_url: str, simulator: SimulatorServer, settings_overrides: dict[str, Any]
) -> Settings:
    """Settings of one test: its own key prefix and queue, fast retries, the simulator."""
    unique = uuid.uuid4().hex[:12]
    return load_settings(
        {
            "redis_url": redis_url,
            "endpoint": simulator.url,
            "auth_token": TOKEN,
            "key_prefix": f"test-{unique}",
            "queue": f"test-{unique}",
            "request_timeout_s": 5,
            "visibility_timeout_s": 60,
            "backoff_base_s": 0.05,
            "backoff_max_s": 0.5,
            "max_attempts": 3,
            # Tests of other guarantees must not be paced by the fleet's rate limit.
            "rate_limit_per_s": 1000,
            "rate_burst": 1000,
            **settings_overrides,
        },
        env_file=None,
    )


@pytest.fixture
def producer(settings: Settings) -> Iterator[Producer]:
    """A producer on the test's settings."""
    p = Producer(settings)
    yield p
    p.close()


WorkerFactory = Callable[..., Service]


@pytest.fixture
def start_worker(settings: Settings, tmp_path: Path) -> Iterator[WorkerFactory]:
    """Start ``htap-sync worker`` processes; all are stopped (SIGTERM) after the test."""
    started: list[Service] = []

    def start(concurrency: int = 4, pool: str = "threads", **overrides: Any) -> Service:
        env = child_env(
            settings, **{f"HTAP_SYNC_{k.upper()}": str(v) for k, v in overrides.items()}
        )
        name = f"worker-{len(started)}"
        service = Service(
            name,
            [
                sys.executable,
                "-m",
                "htap_sync",
                "worker",
                "--concurrency",
                str(concurrency),
                "--pool",
                pool,
                "--hostname",
                f"{name}-{uuid.uuid4().hex[:6]}@%h",
                "--loglevel",
                "INFO",
            ],
            env=env,
            log_dir=tmp_path,
        )
        started.append(service)
        return service

    yield start
    for service, code in zip(started, stop_all(started), strict=True):
        # A worker must shut down warm on SIGTERM; anything else hides a crash.
        if not service.killed:
            assert code in (0, -15), f"{service.name} exited {code}:\n{service.log_tail()}"


__all__ = ["WorkerFactory"]
