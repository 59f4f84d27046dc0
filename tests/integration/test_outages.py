"""Callers ride out a short Redis outage: the Python API and the CLI retry with backoff up to
their deadline; bulk --wait writes the results it has even when Redis stays away."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from htap_sync.common.models import TicketState
from htap_sync.common.settings import Settings, load_settings
from htap_sync.devstack import RedisServer, Service, wait_until
from htap_sync.producer.api import Producer
from htap_sync.simulator import SimulatorConfig, SimulatorServer
from tests.conftest import request_data
from tests.integration.harness import TOKEN, child_env
from tests.integration.test_cli import _read_jsonl, _write_csv, htap_sync
from tests.integration.test_faults import _assert_each_created_once, _succeeded, _worker_on


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test's own, with AOF, that the test stops and starts again."""
    server = RedisServer(tmp_path, appendonly=True, appendfsync="always").wait_ready()
    yield server
    server.stop()


@pytest.fixture
def settings(own_redis: RedisServer, simulator: object) -> Settings:
    """Settings on the test's own Redis."""
    unique = uuid.uuid4().hex[:12]
    return load_settings(
        {
            "redis_url": own_redis.url,
            "endpoint": "http://127.0.0.1:9",
            "auth_token": TOKEN,
            "key_prefix": f"test-{unique}",
            "queue": f"test-{unique}",
        },
        env_file=None,
    )


def test_wait_rides_out_a_redis_restart(
    settings: Settings, own_redis: RedisServer, tmp_path: Path
) -> None:
    """Producer.wait meets a stopped Redis, backs off, and goes on once it is back."""
    restarted: list[RedisServer] = []

    def sleep(seconds: float) -> None:
        # The first pause after the outage began is where a restart lands, deterministically;
        # the others are the wait's own pauses between looks.
        if not restarted:
            restarted.append(RedisServer(tmp_path, appendonly=True, port=own_redis.port))
            restarted[0].wait_ready()
        else:
            time.sleep(seconds)

    producer = Producer(settings, sleep=sleep)
    try:
        ticket = producer.enqueue(request_data(task_name="rides_out")).ticket
        own_redis.stop()
        statuses = producer.wait([ticket], timeout_s=1, poll_s=0.1)
        assert statuses[ticket].state.value == "queued"  # known again, from the AOF
        assert restarted, "the wait never met the outage"
        assert producer.status(ticket).ticket == ticket
    finally:
        producer.close()
        for server in restarted:
            server.stop()


def test_status_gives_up_after_its_deadline(settings: Settings, own_redis: RedisServer) -> None:
    """With Redis away for longer than the deadline, the redis error is raised, not hidden."""
    pauses: list[float] = []
    clock = iter(float(n) for n in range(1000))
    producer = Producer(settings, sleep=pauses.append, clock=lambda: next(clock))
    own_redis.stop()
    with pytest.raises(redis.ConnectionError):
        producer.status("tk_" + "0" * 32, ride_out_s=5)
    assert 3 <= len(pauses) <= 6 and pauses == sorted(pauses)  # backing off, bounded
    producer.close()


def test_bulk_wait_writes_every_line_when_redis_stays_away(
    settings: Settings, own_redis: RedisServer, tmp_path: Path
) -> None:
    """Redis stops while `bulk --wait` waits: past its deadline it writes every row's line
    (ticket and outcome), then exits 69; once Redis is back, `wait` knows the tickets."""
    rows = [request_data(task_name=f"o_{i}") for i in range(3)]
    source = _write_csv(tmp_path / "rows.csv", rows)
    out = tmp_path / "out.jsonl"
    argv = [sys.executable, "-m", "htap_sync", "bulk", str(source), "--wait", "--timeout-s", "3"]
    bulk = subprocess.Popen(
        [*argv, "-o", str(out)],
        env=child_env(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    producer = Producer(settings)
    wait_until(lambda: producer.queue_depth() == 3, timeout_s=30, what="the rows queued")
    producer.close()
    own_redis.stop()  # bulk is waiting now: no worker will ever take the rows
    _, stderr = bulk.communicate(timeout=60)
    assert bulk.returncode == 69, stderr
    assert "Traceback" not in stderr
    lines = _read_jsonl(out)
    assert [line["line"] for line in lines] == [2, 3, 4]
    assert all(line["outcome"] == "queued" and line["ticket"] for line in lines)

    restarted = RedisServer(tmp_path, appendonly=True, port=own_redis.port).wait_ready()
    try:
        tickets = [str(line["ticket"]) for line in lines]
        waited = htap_sync(settings, "wait", *tickets, "--timeout-s", "0.5", "--json")
        assert waited.returncode == 5, waited.stderr  # known again (AOF), still queued
        assert len(waited.stdout.splitlines()) == 3
    finally:
        restarted.stop()


@pytest.fixture
def sim_config() -> SimulatorConfig:
    """50 ms per call, so that a crash lands in the middle of a run."""
    return SimulatorConfig(token=TOKEN, seed=5, latency_ms=50)


@pytest.mark.timeout(240)
def test_a_redis_crash_with_default_settings_recovers_within_a_minute(
    tmp_path: Path, simulator: SimulatorServer
) -> None:
    """kill -9 of Redis mid-run and a restart from its AOF, on the README's default settings
    (visibility timeout 5 minutes): every ticket is done within 60 s of Redis coming back."""
    data = tmp_path / "aof"
    data.mkdir()
    server = RedisServer(data, appendonly=True, appendfsync="always").wait_ready()
    settings = load_settings(
        {
            "redis_url": server.url,
            "endpoint": simulator.url,
            "auth_token": TOKEN,
            "key_prefix": f"dflt-{uuid.uuid4().hex[:8]}",
            "queue": "dflt",
        },
        env_file=None,
    )
    producer = Producer(settings)
    restarted: RedisServer | None = None
    worker: Service | None = None
    try:
        tickets = [
            producer.enqueue(request_data(task_name=f"d_{i:03d}")).ticket for i in range(200)
        ]
        worker = _worker_on(settings, tmp_path)
        wait_until(lambda: _succeeded(producer, tickets) >= 40, timeout_s=60, what="40 done")
        server.kill()
        restarted = RedisServer(data, appendonly=True, appendfsync="always", port=server.port)
        restarted.wait_ready()
        back_at = time.monotonic()
        statuses = producer.wait(tickets, timeout_s=60)
        took = time.monotonic() - back_at
        unfinished = [t for t, s in statuses.items() if not s.state.terminal]
        assert not unfinished, f"{len(unfinished)} unfinished {took:.0f} s after the restart"
        assert {s.state for s in statuses.values()} == {TicketState.SUCCEEDED}
        _assert_each_created_once(simulator, statuses)
        assert worker.alive(), worker.log_tail()
    finally:
        producer.close()
        for service in (worker, restarted, server):
            if service is not None:
                service.stop()
