"""Redis high availability on real parts: a master, a replica and three sentinels on loopback.

Producers, workers (their ticket store, buckets, breaker and broker) all reach Redis through
the sentinels; a failover mid-run loses nothing, creates nothing twice, and fails no ticket
whose task exists.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from htap_sync.common.connections import make_redis
from htap_sync.common.models import TicketState
from htap_sync.common.settings import Settings, load_settings
from htap_sync.devstack import wait_until
from htap_sync.producer.api import Producer
from htap_sync.simulator import SimulatorServer
from tests.conftest import request_data
from tests.integration.conftest import WorkerFactory
from tests.integration.harness import TOKEN
from tests.integration.paths import PATHS, submit
from tests.integration.sentinels import MASTER_NAME, SentinelGroup
from tests.integration.test_faults import FAST_FAULTS, _assert_each_created_once

# Timing-bound: `make test` runs it in the serial set, after the others (see the Makefile).
pytestmark = pytest.mark.serial


@pytest.fixture
def group(tmp_path: Path) -> Iterator[SentinelGroup]:
    """A fresh Sentinel group for one test."""
    started = SentinelGroup(tmp_path / "ha")
    (tmp_path / "ha").mkdir()
    try:
        yield started.start()
    finally:
        started.stop()


@pytest.fixture
def settings(group: SentinelGroup, simulator: SimulatorServer) -> Settings:
    """Settings that name the sentinels, not the master (the URL gives only the database)."""
    unique = uuid.uuid4().hex[:12]
    return load_settings(
        {
            **FAST_FAULTS,
            "redis_url": "redis://ignored.invalid:1/0",
            "redis_sentinels": group.addresses,
            "redis_sentinel_master": MASTER_NAME,
            "endpoint": simulator.url,
            "auth_token": TOKEN,
            "key_prefix": f"test-{unique}",
            "queue": f"test-{unique}",
            "follow": False,
        },
        env_file=None,
    )


@pytest.mark.serial(seconds=22)
def test_clients_find_the_master_through_the_sentinels(
    settings: Settings, group: SentinelGroup
) -> None:
    """make_redis writes to the master the sentinels name, and follows it after a failover."""
    client = make_redis(settings)
    client.set("k", "1")
    assert client.info("replication")["role"] == "master"
    new_port = group.failover()
    new_master = redis.Redis(port=new_port, decode_responses=True)
    writes = iter(range(1_000_000))

    def lands_on_new_master() -> bool:
        # Until the sentinels demote the old master, a write may still land there and be lost
        # (asynchronous replication: why workers WAIT for a replica before each POST). Once it
        # is read-only, redis-py asks the sentinels again and writes reach the new master.
        value = str(next(writes))
        try:
            client.set("k", value)
        except (redis.ConnectionError, redis.ReadOnlyError):
            return False
        return new_master.get("k") == value

    wait_until(lands_on_new_master, timeout_s=30, what="writes on the new master")
    new_master.close()


def _run(producer: Producer, n: int, path: str) -> list[str]:
    return submit(producer, [request_data(task_name=f"ha_{i:03d}") for i in range(n)], path)


def _finished(producer: Producer, tickets: list[str]) -> int:
    # Until the new master has a replica again, no read is one the replicas hold: ridden out.
    found = producer.statuses(tickets, ride_out_s=60).values()
    return sum(1 for s in found if s is not None and s.state.terminal)


@pytest.mark.serial(seconds=25)
@pytest.mark.timeout(240)
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("how", ["sentinel-failover", "kill-master"])
def test_failover_mid_run_loses_nothing_and_creates_nothing_twice(
    how: str,
    path: str,
    settings: Settings,
    group: SentinelGroup,
    simulator: SimulatorServer,
    start_worker: WorkerFactory,
) -> None:
    """300 requests, a failover mid-run: 0 lost, 0 created twice, 0 failed, done within 60 s."""
    producer = Producer(settings)
    try:
        workers = [start_worker(concurrency=8), start_worker(concurrency=8)]
        tickets = _run(producer, 300, path)
        wait_until(lambda: _finished(producer, tickets) >= 60, timeout_s=60, what="first 60")
        if how == "kill-master":
            group.node(group.master_port()).kill()
            old = group.master_port()
            wait_until(lambda: group.master_port() != old, timeout_s=30, what="failover")
            # A master alone takes no writes (min-replicas-to-write 1): the operator brings
            # the dead node back, and the sentinels make it the new master's replica.
            group.restart(old)
        else:
            group.failover()
        failed_over_at = time.monotonic()
        statuses = _wait_through_outage(producer, tickets, timeout_s=60)
        assert time.monotonic() - failed_over_at <= 60
        states = {s.state for s in statuses.values()}
        assert states == {TicketState.SUCCEEDED}, [s.error for s in statuses.values() if s.error]
        _assert_each_created_once(simulator, statuses)
        assert all(w.alive() for w in workers), "a worker exited on the failover"
    finally:
        producer.close()


def _wait_through_outage(producer: Producer, tickets: list[str], *, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return producer.wait(tickets, timeout_s=max(0.1, deadline - time.monotonic()))
        except (redis.ConnectionError, redis.ReadOnlyError):
            assert time.monotonic() < deadline, "Redis not back through the sentinels"


def test_the_in_doubt_mark_reaches_the_replica_before_a_post(
    settings: Settings, group: SentinelGroup
) -> None:
    """start_attempt with replicas=1 returns only once the replica holds the mark."""
    from htap_sync.common.connections import make_store
    from htap_sync.common.models import parse_request
    from htap_sync.common.tickets.claims import Claim

    store = make_store(settings)
    ticket, run, _ = store.submit(parse_request(request_data(task_name="wait_for_replica")))
    claim = store.begin(ticket, run, lease_s=settings.lease_s)
    assert isinstance(claim, Claim)
    assert store.connected_replicas() == 1
    assert store.start_attempt(claim, lease_s=settings.lease_s, replicas=1, wait_s=5)
    replica = redis.Redis(port=group.nodes[1].port, decode_responses=True)
    assert replica.hget(store.key(ticket), "in_doubt") == "1"


@pytest.mark.serial(seconds=55)
@pytest.mark.timeout(300)
@pytest.mark.parametrize("path", PATHS)
def test_two_failovers_with_writes_in_flight_never_lose_a_recorded_result(
    path: str,
    settings: Settings,
    group: SentinelGroup,
    simulator: SimulatorServer,
    start_worker: WorkerFactory,
) -> None:
    """Three workers at 30 creates/s, SENTINEL FAILOVER at about 40 % and again at 70 %, with
    marks and results being written during each promotion. The count of succeeded tickets,
    sampled all along through the sentinels, never decreases (no result stored and then lost
    by an old master); 0 lost, 0 created twice, 0 failed."""
    producer = Producer(settings)
    samples: list[int] = []
    stop = threading.Event()
    tickets: list[str] = []

    def sample() -> None:
        while not stop.is_set():
            with contextlib.suppress(redis.RedisError):
                samples.append(_succeeded(producer, tickets))
            stop.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    try:
        workers = [
            start_worker(concurrency=8, rate_limit_per_s=30, rate_burst=30) for _ in range(3)
        ]
        tickets.extend(_run(producer, 300, path))
        sampler.start()
        for share in (120, 210):
            wait_until(
                lambda share=share: _finished(producer, tickets) >= share,  # type: ignore[misc]
                timeout_s=90,
                what=f"{share} done",
            )
            group.failover()
        statuses = _wait_through_outage(producer, tickets, timeout_s=120)
        stop.set()
        sampler.join(5)
        samples.append(_succeeded(producer, tickets))  # after the last one's success
        drops = [(a, b) for a, b in itertools.pairwise(samples) if b < a]
        assert not drops, drops
        assert len(samples) > 20 and samples[-1] == 300, samples[-5:]
        states = {s.state for s in statuses.values()}
        assert states == {TicketState.SUCCEEDED}, [s.error for s in statuses.values() if s.error]
        _assert_each_created_once(simulator, statuses)
        assert all(w.alive() for w in workers), "a worker exited on a failover"
    finally:
        stop.set()
        producer.close()


def _succeeded(producer: Producer, tickets: list[str]) -> int:
    found = producer.statuses(tickets).values()
    return sum(1 for s in found if s is not None and s.state is TicketState.SUCCEEDED)
