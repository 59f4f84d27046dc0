"""Redis connections built from settings (one place decides how we talk to Redis)."""

from __future__ import annotations

from typing import Any, TypeVar, cast
from urllib.parse import quote

import redis
from redis._parsers.base import BaseParser
from redis.sentinel import Sentinel

from htap_sync.common.settings import Settings
from htap_sync.common.tickets.claims_redis import RedisClaimStore
from htap_sync.common.tickets.store import TicketStore

_CLIENT_OPTIONS: dict[str, Any] = {"health_check_interval": 30, "socket_connect_timeout": 10}


class NoReplicasError(redis.ResponseError, redis.ConnectionError):
    """``NOREPLICAS``: the master has fewer good replicas than ``min-replicas-to-write`` (a
    master cut off by a failover, or one whose replica is away) and takes no write now.

    Nothing was written; it passes when a replica is back or the sentinels name another
    master. So it is an outage, as a lost connection is (a ``ConnectionError``: retried,
    ridden out, never a bug), and kombu reconnects instead of stopping the worker.
    """


def noreplicas_is_an_outage() -> None:
    """Make redis-py raise :class:`NoReplicasError` for ``NOREPLICAS`` answers (idempotent)."""
    BaseParser.EXCEPTION_CLASSES["NOREPLICAS"] = NoReplicasError


def make_redis(settings: Settings, *, max_connections: int | None = None) -> redis.Redis:
    """A redis-py client that returns text, not bytes: on ``HTAP_SYNC_REDIS_URL``, or on the
    master the sentinels name (found again after a failover: a demoted master's ReadOnlyError
    or a lost connection makes redis-py ask the sentinels).

    ``max_connections``: the size of its pool (redis-py's default is 100); a worker sizes it
    to what its threads and batches hold at once.
    """
    noreplicas_is_an_outage()
    options = dict(_CLIENT_OPTIONS)
    if max_connections is not None:
        options["max_connections"] = max_connections
    if not settings.redis.sentinel_hosts():
        return redis.Redis.from_url(str(settings.redis.url), decode_responses=True, **options)
    url = settings.redis.url
    sentinel: Any = sentinel_for(settings)  # redis-py types Sentinel in some releases only
    client = sentinel.master_for(
        str(settings.redis.sentinel_master),
        redis_class=redis.Redis,
        decode_responses=True,
        db=int((url.path or "/0").lstrip("/") or 0),
        username=url.username or None,
        password=url.password or None,
        **options,
    )
    return cast(redis.Redis, client)


# Typed in some redis-py releases, untyped in others: called through Any for both.
_SENTINEL: Any = Sentinel


def sentinel_for(settings: Settings) -> Sentinel:
    """The Sentinel client of these settings (their sentinels must be configured)."""
    password = settings.redis.sentinel_password
    sentinel = _SENTINEL(
        settings.redis.sentinel_hosts(),
        sentinel_kwargs={
            "password": password.get_secret_value() if password else None,
            "socket_connect_timeout": 5,
            "socket_timeout": 5,
        },
    )
    return cast(Sentinel, sentinel)


def broker_options(settings: Settings) -> tuple[str, dict[str, Any]]:
    """Celery's broker URL and the transport options it needs (kombu's sentinel transport).

    Contains the Redis password in clear text: never print or log it.
    """
    noreplicas_is_an_outage()  # kombu's own clients, too
    if not settings.redis.sentinel_hosts():
        return str(settings.redis.url), {}
    url = settings.redis.url
    auth = ""
    if url.password:
        auth = f"{quote(url.username or '', safe='')}:{quote(url.password, safe='')}@"
    path = url.path or "/0"
    broker = ";".join(
        f"sentinel://{auth}{host}:{port}{path}" for host, port in settings.redis.sentinel_hosts()
    )
    password = settings.redis.sentinel_password
    sentinel_kwargs = {"password": password.get_secret_value()} if password else {}
    options = {"master_name": settings.redis.sentinel_master, "sentinel_kwargs": sentinel_kwargs}
    return broker, options


def make_ticket_store(settings: Settings, client: redis.Redis | None = None) -> TicketStore:
    """The submit-and-read ticket store of producers and callers."""
    return _store(TicketStore, settings, client)


def make_store(settings: Settings, client: redis.Redis | None = None) -> RedisClaimStore:
    """The ticket store (with the worker's lease protocol) for these settings, on ``client``
    or a new connection."""
    return _store(RedisClaimStore, settings, client)


_Store = TypeVar("_Store", bound=TicketStore)


def _store(kind: type[_Store], settings: Settings, client: redis.Redis | None) -> _Store:
    """A store of ``kind`` on ``client`` (or a new connection), configured from ``settings``:
    the one place both stores take their key prefix, result TTL and watch period."""
    return kind(
        client if client is not None else make_redis(settings),
        key_prefix=settings.key_prefix,
        result_ttl_s=settings.delivery.result_ttl_s,
        watch_s=settings.delivery.visibility_timeout_s,
        read_replicas=read_replicas(settings),
        read_wait_s=settings.redis.wait_timeout_s,
    )


def read_replicas(settings: Settings) -> int:
    """How many replicas must hold what a status read shows: with sentinels (a failover can
    promote a replica and drop what only the old master had), those that must hold the
    in-doubt mark; without, none (no replica takes over by itself)."""
    return settings.redis.wait_replicas if settings.redis.sentinel_hosts() else 0
