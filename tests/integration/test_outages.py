"""Callers ride out a short Redis outage: the Python API and the CLI retry with backoff up to
their deadline; bulk --wait writes the results it has even when Redis stays away."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from pydantic import RedisDsn

from htap_sync.common.settings import Settings, load_settings
from htap_sync.devstack import RedisServer, wait_until
from htap_sync.producer.api import Producer
from tests.conftest import request_data
from tests.integration.harness import TOKEN, child_env
from tests.integration.test_cli import _read_jsonl, _write_csv, htap_sync


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
        env=child_env(settings, HTAP_SYNC_BATCH_SIZE="1"),  # a message per row, counted below
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


@pytest.mark.parametrize(
    ("args", "code"),
    [(("status", "--timeout-s", "60"), 0), (("wait", "--timeout-s", "20", "--json"), 5)],
)
def test_the_cli_rides_out_a_redis_restart(
    settings: Settings, own_redis: RedisServer, tmp_path: Path, args: tuple[str, ...], code: int
) -> None:
    """`status` and `wait` meet a Redis that is down, back off, and answer once it is back
    (status: 0; wait: 5, the ticket still queued at its deadline), never 69."""
    producer = Producer(settings)
    ticket = producer.enqueue(request_data(task_name="cli_rides_out")).ticket
    producer.close()
    own_redis.stop()
    # While Redis is down its port takes one connection and drops it: proof that the command
    # met the outage before Redis comes back.
    listener = socket.create_server(("127.0.0.1", own_redis.port))
    listener.settimeout(60)
    command, *options = args
    cli = subprocess.Popen(
        [sys.executable, "-m", "htap_sync", command, ticket, *options],
        env=child_env(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        dropped, _ = listener.accept()
        dropped.close()
    finally:
        listener.close()
    restarted = RedisServer(tmp_path, appendonly=True, port=own_redis.port).wait_ready()
    try:
        stdout, stderr = cli.communicate(timeout=90)
    finally:
        restarted.stop()
    assert cli.returncode == code, stderr
    assert ticket in stdout and "queued" in stdout


def test_a_refused_password_is_not_ridden_out(settings: Settings, own_redis: RedisServer) -> None:
    """A wrong password (redis-py's AuthenticationError is a ConnectionError) raises at once:
    waiting never cures it, so no deadline is spent on it."""
    pauses: list[float] = []
    clock = iter(float(n) for n in range(1000))
    url = f"redis://nobody:wrong-password@127.0.0.1:{own_redis.port}/0"
    wrong = settings.replace(redis_url=RedisDsn(url))
    producer = Producer(wrong, sleep=pauses.append, clock=lambda: next(clock))
    try:
        with pytest.raises(redis.AuthenticationError):
            producer.status("tk_" + "0" * 32, ride_out_s=100)
        with pytest.raises(redis.AuthenticationError):
            producer.wait(["tk_" + "0" * 32], timeout_s=100)
        assert pauses == []
    finally:
        producer.close()


def test_wait_with_a_wrong_password_exits_69_without_waiting_out_its_deadline(
    settings: Settings, own_redis: RedisServer
) -> None:
    """`wait --timeout-s 3600` with a wrong password: exit 69 saying Redis refused us (the
    subprocess's own 60 s limit fails the test if the hour were waited out)."""
    url = f"redis://nobody:wrong-password@127.0.0.1:{own_redis.port}/0"
    ran = htap_sync(
        settings,
        *("wait", "tk_" + "0" * 32, "--timeout-s", "3600"),
        env={"HTAP_SYNC_REDIS_URL": url},
        timeout_s=60,
    )
    assert ran.returncode == 69, ran.stderr
    assert f"Redis at redis://nobody:***@127.0.0.1:{own_redis.port}/0 refused us" in ran.stderr
    assert "wrong-password" not in ran.stdout + ran.stderr


def test_bulk_writes_the_lines_of_queued_rows_when_redis_goes_while_queueing(
    settings: Settings, own_redis: RedisServer, tmp_path: Path
) -> None:
    """Redis stops while bulk waits for room to queue its second batch (max queue depth 2, no
    worker): the two rows already queued still get their lines (ticket, outcome); exit 69."""
    source = _write_csv(tmp_path / "rows.csv", [request_data(task_name=f"q_{i}") for i in range(5)])
    out = tmp_path / "out.jsonl"
    bulk = subprocess.Popen(
        [sys.executable, "-m", "htap_sync", "bulk", str(source), "--wait", "-o", str(out)],
        env=child_env(settings, HTAP_SYNC_MAX_QUEUE_DEPTH="2", HTAP_SYNC_BATCH_SIZE="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    producer = Producer(settings)
    wait_until(lambda: producer.queue_depth() == 2, timeout_s=30, what="the first batch queued")
    producer.close()
    own_redis.stop()  # bulk is waiting for room now: no worker will ever make it
    _, stderr = bulk.communicate(timeout=60)
    assert bulk.returncode == 69, stderr
    assert "is unreachable" in stderr and "Traceback" not in stderr
    lines = _read_jsonl(out)
    assert [line["line"] for line in lines] == [2, 3]
    assert all(line["outcome"] == "queued" and line["ticket"] for line in lines)
