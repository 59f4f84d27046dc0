"""How a worker talks to Redis: a pool sized to what it holds at once, NOREPLICAS an outage."""

from __future__ import annotations

import redis
from redis._parsers.base import BaseParser

from htap_sync.common.connections import NoReplicasError, make_redis
from htap_sync.common.settings import load_settings
from htap_sync.worker.runtime import BACKGROUND_CONNECTIONS, redis_connections

SETTINGS = load_settings({"redis_url": "redis://127.0.0.1:1/0"}, env_file=None)


def test_the_pool_holds_every_ticket_of_every_batch_in_flight() -> None:
    """8 task slots, each a batch of 16 whose tickets may each go on alone in a thread, plus
    the background threads: more than redis-py's default pool of 100 ("Too many
    connections" with README settings)."""
    assert SETTINGS.batch_size == 16
    wanted = redis_connections(SETTINGS, 8)
    assert wanted == 8 * (16 + 1) + BACKGROUND_CONNECTIONS > 100
    client = make_redis(SETTINGS, max_connections=wanted)
    assert client.connection_pool.max_connections == wanted


def test_noreplicas_is_an_outage_not_a_refusal() -> None:
    """A master cut off from its replicas answers NOREPLICAS: a connection error to redis-py,
    kombu and the worker (ridden out), and still a ResponseError (raised, not returned)."""
    make_redis(SETTINGS)  # registers the mapping
    error = BaseParser.parse_error("NOREPLICAS Not enough good replicas to write. x")  # type: ignore[no-untyped-call]
    assert isinstance(error, NoReplicasError)
    assert isinstance(error, redis.ConnectionError) and isinstance(error, redis.ResponseError)
