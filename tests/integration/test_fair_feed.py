"""The bulk feeder on a real Redis: weighted round-robin between tenants' queues, a target
depth, level rejoining, and bulk's lift to the head of a waiting interactive queue."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from htap_sync.common.broker_queue import tickets_of
from htap_sync.common.celery_app import make_celery
from htap_sync.common.connections import make_redis
from htap_sync.common.fair_feed import (
    BulkFeeder,
    queued_depth,
    requeue,
    tenant_queue,
    tenants_key,
)
from htap_sync.common.keys import Keys
from htap_sync.common.lanes import queue_name
from htap_sync.common.messages import batch_frame, batch_item
from htap_sync.common.settings import Settings, load_settings


@pytest.fixture
def settings(redis_url: str) -> Settings:
    """A key space of its own; weights a=2, b=1; 10 creates/s, bulk's minimum share 0.2."""
    unique = f"feed-{uuid.uuid4().hex[:8]}"
    overrides: dict[str, Any] = {"redis_url": redis_url, "key_prefix": unique, "queue": unique}
    overrides |= {"tenant_weights": "a=2,b=1", "rate_limit_per_s": 10}
    return load_settings(overrides, env_file=None)


@pytest.fixture
def client(settings: Settings) -> Iterator[Any]:
    """A client on the session's Redis."""
    redis_client = make_redis(settings)
    yield redis_client
    redis_client.close()


def _wait(client: Any, settings: Settings, tenant: str, count: int) -> None:
    key = Keys(settings.key_prefix).queue(tenant_queue(settings, tenant))
    client.lpush(key, *[f"{tenant}-{i}" for i in range(count)])
    client.sadd(tenants_key(settings), tenant)


def _bulk(client: Any, settings: Settings) -> list[str]:
    """The bulk queue's messages, oldest first (the order workers take them)."""
    key = Keys(settings.key_prefix).queue(queue_name(settings, "bulk"))
    return list(reversed(client.lrange(key, 0, -1)))


def test_tenants_are_fed_by_weight_up_to_the_target(client: Any, settings: Settings) -> None:
    """30 messages of room: 20 of a (weight 2) and 10 of b, interleaved, each tenant's in its
    own order; nothing more while the queue is full."""
    _wait(client, settings, "a", 100)
    _wait(client, settings, "b", 100)
    feeder = BulkFeeder(client, settings, target=30)
    assert feeder.feed() == 30
    fed = _bulk(client, settings)
    assert Counter(m.split("-")[0] for m in fed) == {"a": 20, "b": 10}
    assert [m for m in fed if m.startswith("a")] == [f"a-{i}" for i in range(20)]
    assert max(len(run) for run in "".join(m[0] for m in fed).split("b")) <= 2
    assert feeder.feed() == 0
    assert feeder.waiting() == {"a": 80, "b": 90}
    assert queued_depth(client, settings) == 30 + 170


def test_a_tenant_that_comes_back_starts_level(client: Any, settings: Settings) -> None:
    """b leaves when its queue is empty; when it comes back after a fed alone for long, it
    gets its share from then on, not the whole queue to catch up."""
    feeder = BulkFeeder(client, settings, target=300)
    _wait(client, settings, "a", 200)
    _wait(client, settings, "b", 1)
    assert feeder.feed() == 201
    assert feeder.waiting() == {}  # both left (their queues are empty)
    key = Keys(settings.key_prefix).queue(queue_name(settings, "bulk"))
    client.delete(key)
    _wait(client, settings, "a", 50)
    _wait(client, settings, "b", 50)
    feeder = BulkFeeder(client, settings, target=30)
    feeder.feed()
    assert Counter(m.split("-")[0] for m in _bulk(client, settings)) == {"a": 20, "b": 10}


def test_bulk_is_lifted_ahead_of_a_waiting_interactive_queue(
    client: Any, settings: Settings
) -> None:
    """With interactive messages waiting, the feeder puts the oldest bulk message at the head
    of the interactive queue (taken next), at twice bulk's minimum share: 2 x 0.2 x 10/s = 4
    messages a second (a lift spends a message's credit: the next must wait for more)."""
    interactive = Keys(settings.key_prefix).queue(queue_name(settings, "interactive"))
    client.lpush(interactive, "i-0", "i-1")
    _wait(client, settings, "a", 5)
    feeder = BulkFeeder(client, settings, target=3)
    feeder.feed()  # fills the bulk queue (a-0, a-1, a-2); starts counting the credit
    feeder.feed()  # some credit: the first lift, a-0
    assert client.lindex(interactive, -1) == "a-0"
    assert client.llen(interactive) == 3
    feeder.feed()  # the credit is spent (below 0): no other
    assert client.llen(interactive) == 3


def test_a_lifted_batch_costs_one_message_of_credit(client: Any, settings: Settings) -> None:
    """A batch of 16 tickets is lifted at the cost of one message: a lifted ticket refused a
    token comes back to the head of the bulk queue and is lifted again, so counting a batch's
    tickets would charge bulk's share twice for it. A second on, the credit is at its most,
    a second of bulk's share (0.2 x 10/s = 2 messages): two batches are lifted."""
    keys = Keys(settings.key_prefix)
    interactive = keys.queue(queue_name(settings, "interactive"))
    bulk = keys.queue(queue_name(settings, "bulk"))
    client.lpush(interactive, "i-0")
    frame = batch_frame(make_celery(settings), queue_name(settings, "bulk"), 16)
    batches = [
        frame.filled([batch_item(f"tk_{b}{i:02d}", "r", {"lane": "bulk"}) for i in range(16)])
        for b in "xyz"
    ]
    client.lpush(bulk, *batches)  # x first
    feeder = BulkFeeder(client, settings, target=0)
    feeder.feed()  # starts counting the credit
    shares = f"{settings.key_prefix}:bulk-shares"
    client.hset(shares, "@lift", float(client.hget(shares, "@lift")) - 1.0)  # a second ago
    feeder.feed()
    assert [len(tickets_of(json.dumps([json.loads(m)]))) for m in batches] == [16] * 3
    assert client.lrange(interactive, 0, -1) == ["i-0", batches[0], batches[1]]  # at the head
    assert client.lrange(bulk, 0, -1) == [batches[2]]


def test_a_bulk_ticket_sent_again_never_overtakes_a_waiting_interactive_one(
    client: Any, settings: Settings
) -> None:
    """The mover sends a bulk ticket again (its purposeful wait ended): to its tenant's queue
    while no interactive message waits, but to the head of the bulk queue while some do (the
    next lifted at bulk's share; its tenant was charged when it was fed), never ahead of the
    interactive messages. A ticket of the interactive lane goes to the back of its queue."""
    keys = Keys(settings.key_prefix)
    interactive = keys.queue(queue_name(settings, "interactive"))
    bulk_queue = keys.queue(queue_name(settings, "bulk"))
    send = requeue(make_celery(settings), settings, client)
    bulk = {"project_id": "p", "lane": "bulk", "tenant": "a"}
    send("t1", "r1", bulk)
    assert client.llen(keys.queue(tenant_queue(settings, "a"))) == 1
    assert client.smembers(tenants_key(settings)) == {"a"}  # in the same step
    assert client.llen(interactive) == 0
    client.lpush(bulk_queue, "fed-earlier")
    client.lpush(interactive, "waiting-interactive")
    send("t2", "r2", bulk)
    send("t3", "r3", {"project_id": "p", "lane": "interactive"})
    assert client.llen(keys.queue(tenant_queue(settings, "a"))) == 1
    # Workers take from the right: the interactive queue first, in its order.
    assert client.rpop(interactive) == "waiting-interactive"
    assert tickets_of(json.dumps([json.loads(client.rpop(interactive))])) == (("t3", "r3"),)
    # The bulk ticket is the next of the bulk queue, ahead of what was fed before it.
    first, second = client.rpop(bulk_queue), client.rpop(bulk_queue)
    assert tickets_of(json.dumps([json.loads(first)])) == (("t2", "r2"),)
    assert second == "fed-earlier"
