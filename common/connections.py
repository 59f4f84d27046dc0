"""Redis connections built from settings (one place decides how we talk to Redis)."""

from __future__ import annotations

import redis

from htap_sync.common.settings import Settings
from htap_sync.common.store import TicketStore


def make_redis(settings: Settings) -> redis.Redis:
    """A redis-py client on ``settings.redis_url`` that returns text, not bytes."""
    return redis.Redis.from_url(
        str(settings.redis_url),
        decode_responses=True,
        health_check_interval=30,
        socket_connect_timeout=10,
    )


def make_store(settings: Settings, client: redis.Redis | None = None) -> TicketStore:
    """The ticket store for these settings, on ``client`` or a new connection."""
    return TicketStore(
        client if client is not None else make_redis(settings),
        key_prefix=settings.key_prefix,
        result_ttl_s=settings.result_ttl_s,
        watch_s=settings.visibility_timeout_s,
    )
