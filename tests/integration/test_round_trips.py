"""What one delivery costs Redis, counted on the real path: a store, a gate (bucket and
breaker) and following on a redis-server of this module's own, every command counted by the
connection that sends it.

A created ticket costs two round trips, each one script: ``start`` (claim, token, breaker,
in-doubt mark; with its ``WAIT`` when replicas must hold the mark) and ``finish`` (success,
breaker, enrolment); a batch of created tickets costs the same two for all of them. A
breaker and a bucket write only what changes (the server's count of changes says so).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import redis

from htap_sync.common.connections import make_store
from htap_sync.common.keys import Keys
from htap_sync.common.limits.breaker import BreakerPolicy, RedisBreakerStore
from htap_sync.common.limits.bucket import BucketPolicy, RedisBucketStore
from htap_sync.common.limits.gate import Gate
from htap_sync.common.models import TicketState, parse_request
from htap_sync.common.settings import Settings, load_settings
from htap_sync.common.tickets.claims_redis import RedisClaimStore
from htap_sync.devstack import RedisServer, wait_until
from htap_sync.worker.api.client import TaurusClient
from htap_sync.worker.delivery.start import Delivery
from htap_sync.worker.delivery.ticket import Outcome, process_ticket
from htap_sync.worker.delivery.together import process_batch
from htap_sync.worker.following.store import FollowStore, enroller, instance_ref
from tests.conftest import request_data
from tests.scripted_api import ScriptedApi, created

BASE_URL = "https://taurus.invalid"  # MockTransport answers; nothing is ever resolved


def command_names(packed: bytes) -> list[str]:
    """The name of each command in a packed (RESP) request: one or a pipeline's many."""
    names, at = [], 0
    while at < len(packed):
        assert packed[at : at + 1] == b"*", packed[at : at + 20]
        end = packed.index(b"\r\n", at)
        count, at = int(packed[at + 1 : end]), end + 2
        for i in range(count):
            end = packed.index(b"\r\n", at)
            size = int(packed[at + 1 : end])
            if i == 0:
                names.append(packed[end + 2 : end + 2 + size].decode().upper())
            at = end + 2 + size + 2
    return names


class CountingConnection(redis.Connection):
    """A connection that notes each request it sends: one round trip, its commands."""

    trips: ClassVar[list[list[str]] | None] = None  # None: not counting

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        if CountingConnection.trips is not None:
            chunks = [command] if isinstance(command, str | bytes) else command
            packed = b"".join(c.encode() if isinstance(c, str) else bytes(c) for c in chunks)
            CountingConnection.trips.append(command_names(packed))
        super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]


@contextmanager
def counting() -> Iterator[list[list[str]]]:
    """The requests sent (each a list of command names) while the block runs."""
    trips: list[list[str]] = []
    CountingConnection.trips = trips
    try:
        yield trips
    finally:
        CountingConnection.trips = None


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server for this module alone: its counters see nothing else."""
    server = RedisServer(tmp_path_factory.mktemp("trips")).wait_ready()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Worker:
    """One worker's real collaborators on the counting client."""

    settings: Settings
    client: redis.Redis
    api: ScriptedApi = field(default_factory=ScriptedApi)

    def __post_init__(self) -> None:
        self.store: RedisClaimStore = make_store(self.settings, self.client)
        buckets, breakers = RedisBucketStore(self.client), RedisBreakerStore(self.client)
        self.gate = Gate(buckets, breakers, self.settings)
        self.follow = FollowStore(self.client, Keys(self.settings.key_prefix))
        self.http = httpx.Client(base_url=BASE_URL, transport=httpx.MockTransport(self.api))

    def deliver(self, name: str, replicas: int = 0) -> tuple[str, dict[str, str], Outcome]:
        """Submit a ticket and deliver its message once; the API creates the task."""
        payload = request_data(task_name=name)
        ticket, run, _ = self.store.submit(parse_request(payload))
        self.api.answer_creates(created(f"job-{name}"))
        outcome = process_ticket(
            ticket,
            run,
            payload,
            client=TaurusClient(self.http),
            store=self.store,
            settings=self.settings,
            rng=random.Random(7),
            gate=self.gate,
            enroll=enroller(self.follow, timeout_s=600, first_s=5),
            replicas=lambda: replicas,
        )
        return ticket, payload, outcome

    def deliver_batch(
        self, names: list[str], replicas: int = 0
    ) -> list[tuple[str, dict[str, str], Outcome | Exception]]:
        """Submit a ticket each and deliver them as one batch; the API creates each task."""
        items = []
        for name in names:
            payload = request_data(task_name=name)
            ticket, run, _ = self.store.submit(parse_request(payload))
            self.api.answer_creates(created(f"job-{name}"))
            items.append((ticket, run, payload))
        enroll = enroller(self.follow, timeout_s=600, first_s=5)
        d = Delivery(
            TaurusClient(self.http),
            self.store,
            self.settings,
            random.Random(7),
            self.gate,
            time.time,
            enroll,
            lambda: replicas,
        )
        ends = process_batch(items, d)
        return [
            (ticket, payload, end) for (ticket, _, payload), end in zip(items, ends, strict=True)
        ]


def worker_on(url: str) -> Worker:
    """A worker on ``url`` with its own keys, counting what its client sends."""
    settings = load_settings(
        {
            "redis_url": url,
            "endpoint": BASE_URL,
            "key_prefix": f"trips-{uuid.uuid4().hex[:8]}",
            "rate_limit_per_s": 100,
            "rate_burst": 100,  # a batch of 16 within the burst: no ticket sleeps for a token
        },
        env_file=None,
    )
    client = redis.Redis.from_url(url, decode_responses=True, connection_class=CountingConnection)
    return Worker(settings, client)


@pytest.fixture
def worker(own_redis: RedisServer) -> Iterator[Worker]:
    """A worker on this module's Redis."""
    made = worker_on(own_redis.url)
    yield made
    made.http.close()
    made.client.close()


def assert_created_and_followed(worker: Worker, ticket: str, payload: dict[str, str]) -> None:
    """The ticket succeeded with its job, out of doubt, and its task is followed."""
    status = worker.store.get(ticket)
    assert (status.state, status.job_id, status.attempts) == (
        TicketState.SUCCEEDED,
        f"job-{payload['task_name']}",
        1,
    )
    assert status.sync is not None and status.sync.state.value == "following"
    ref = instance_ref(payload["project_id"], payload["instance_id"])
    assert [m.ticket for m in worker.follow.members(ref)].count(ticket) == 1
    assert worker.client.zscore(worker.follow.keys.follow_due, ref) is not None


def test_a_created_ticket_costs_two_scripts(worker: Worker) -> None:
    """Claim to success: two round trips, one EVALSHA each (start, then finish); nothing
    else, not even a read of the ticket or the breaker."""
    worker.deliver("warm_up")  # connects and loads the scripts
    with counting() as trips:
        ticket, payload, outcome = worker.deliver("counted")
    assert outcome == Outcome("finished", reason="created")
    submit, *delivery = trips
    assert submit == ["EVALSHA"]  # the producer's submit, on the same client here
    assert delivery == [["EVALSHA"], ["EVALSHA"]]
    assert_created_and_followed(worker, ticket, payload)
    assert worker.gate.breaker() is None  # closed, never written


def test_a_batch_of_created_tickets_costs_two_scripts(worker: Worker) -> None:
    """16 tickets of one batch, each created: one script starts them all, one records them
    all (each followed); two round trips for the batch, not two per ticket."""
    names = [f"batch_{i:02d}" for i in range(16)]
    worker.deliver_batch(["warm_up"])  # connects and loads the scripts
    with counting() as trips:
        ends = worker.deliver_batch(names)
    assert trips[16:] == [["EVALSHA"], ["EVALSHA"]]  # after the 16 submits
    for ticket, payload, end in ends:
        assert end == Outcome("finished", reason="created")
        assert_created_and_followed(worker, ticket, payload)
    assert worker.gate.breaker() is None


def test_with_a_replica_the_wait_rides_with_the_start(tmp_path: Path) -> None:
    """A mark that must reach a replica: the WAIT goes in the start's round trip; the success
    too must reach it before the ticket is called finished: its WAIT goes in the finish's.
    (A master of its own: a replica's sync would save, and reset the counts the tests below
    read.)"""
    (tmp_path / "master").mkdir()
    (tmp_path / "replica").mkdir()
    master = RedisServer(tmp_path / "master").wait_ready()
    replica = RedisServer(
        tmp_path / "replica", extra=["--replicaof", "127.0.0.1", str(master.port)]
    ).wait_ready()
    link = redis.Redis(port=replica.port, decode_responses=True)
    made = worker_on(master.url)
    try:
        wait_until(
            lambda: link.info("replication").get("master_link_status") == "up",
            timeout_s=30,
            what="replica",
        )
        made.deliver("warm_up_replica", replicas=1)
        with counting() as trips:
            ticket, payload, outcome = made.deliver("counted_replica", replicas=1)
        assert outcome == Outcome("finished", reason="created")
        assert trips[1:] == [["EVALSHA", "WAIT"], ["EVALSHA", "WAIT"]]
        assert_created_and_followed(made, ticket, payload)
        made.deliver_batch(["warm_up_batch"], replicas=1)
        with counting() as trips:
            ends = made.deliver_batch(["batch_a", "batch_b", "batch_c"], replicas=1)
        # One WAIT for the batch's start, one for its results.
        assert trips[3:] == [["EVALSHA", "WAIT"], ["EVALSHA", "WAIT"]]
        for done, fields, end in ends:
            assert end == Outcome("finished", reason="created")
            assert_created_and_followed(made, done, fields)
        assert link.hget(made.store.key(ticket), "state") in {"running", "succeeded"}
    finally:
        made.http.close()
        made.client.close()
        link.close()
        replica.stop()
        master.stop()


def changes(client: redis.Redis) -> int:
    """The server's count of changes (fields set, keys expired...) since it started."""
    return int(client.info("persistence")["rdb_changes_since_last_save"])


def test_a_breaker_writes_only_what_changes(worker: Worker) -> None:
    """Closed, no failures: checks and successes write nothing; a failure, and the success
    that resets it, write the one field that changed (and the key's expiry)."""
    breakers, key, policy = RedisBreakerStore(worker.client), "breaker:x", BreakerPolicy()
    before = changes(worker.client)
    assert breakers.allow(key, policy, 1000.0) == 0
    breakers.record(key, policy, 1000.0, True)
    assert changes(worker.client) == before
    assert breakers.state(key) is None
    breakers.record(key, policy, 1001.0, False)  # a new hash: all seven fields, its expiry
    assert changes(worker.client) == before + 8
    breakers.record(key, policy, 1002.0, True)  # failures back to 0
    assert changes(worker.client) == before + 10
    breakers.record(key, policy, 1003.0, True)
    assert breakers.allow(key, policy, 1003.0) == 0
    assert changes(worker.client) == before + 10


def test_a_bucket_writes_only_what_changes(worker: Worker) -> None:
    """A token taken changes the count and its time: the fields that changed (and the
    expiry), not six: here the count is back where it was and only the time moves."""
    buckets, key = RedisBucketStore(worker.client), "bucket:x"
    policy = BucketPolicy(rate_per_s=10, burst=5)
    before = changes(worker.client)
    assert buckets.acquire(key, policy, 1000.0).granted  # a new hash: six fields, its expiry
    assert changes(worker.client) == before + 7
    assert buckets.acquire(key, policy, 1000.5).granted  # 4 + 5 refilled - 1, at most 5 - 1
    assert changes(worker.client) == before + 9
    assert buckets.acquire(key, policy, 1000.55).granted  # 4 + 0.5 - 1
    assert changes(worker.client) == before + 12
    state = buckets.state(key)
    assert state is not None and state.tokens == pytest.approx(3.5) and state.rate == 10
