"""What the fleet is doing, read through each store: queue, waits, failures, rates, breakers."""

from __future__ import annotations

from typing import Any, cast

import redis
from pydantic import AnyHttpUrl

from htap_sync.common.broker_queue import BrokerQueue
from htap_sync.common.fair_feed import tenant_queue, tenants_key
from htap_sync.common.keys import Keys
from htap_sync.common.lanes import LANES, queue_name, tenant_weights
from htap_sync.common.limits.breaker import BreakerState, RedisBreakerStore
from htap_sync.common.limits.bucket import RedisBucketStore
from htap_sync.common.limits.bucket_lanes import LaneState
from htap_sync.common.settings import Settings
from htap_sync.common.tickets.delayed import DelayedSet
from htap_sync.common.tickets.store import TicketStore
from htap_sync.worker.following.store import FollowStore


def fleet_view(
    client: redis.Redis, settings: Settings, *, with_tickets: bool = False
) -> dict[str, Any]:
    """A JSON-ready picture of one deployment (its key prefix) on its Redis.

    Each part is read through its own store (``state()`` of the queue, the delayed set, each
    bucket and breaker, the follow structures; the ticket store's counts), so no view knows a
    store's fields. Times are read on Redis's clock, the one the rate limit and the breaker
    use. ``with_tickets`` adds counts of tickets by state (a scan of every ticket).
    """
    keys = Keys(settings.key_prefix)
    seconds, micros = client.time()
    now = seconds + micros / 1e6
    tickets = TicketStore(
        client, key_prefix=settings.key_prefix, result_ttl_s=settings.delivery.result_ttl_s
    )
    view: dict[str, Any] = {
        "queue": BrokerQueue(client, keys, settings.queue).state(),
        "delayed": DelayedSet(client, key_prefix=settings.key_prefix, clock=lambda: now).state(),
        "failed": tickets.failed_count(),
        "rate_limits": _rate_limits(client, keys, settings, now),
        "breakers": _breakers(client, keys, now, settings.cloud.endpoint),
        "following": FollowStore(client, keys).state(),
        "lanes": _lanes(client, keys, settings),
    }
    if with_tickets:
        view["tickets"] = tickets.count_by_state()
    return view


def _rate_limits(
    client: redis.Redis, keys: Keys, settings: Settings, now: float
) -> list[dict[str, Any]]:
    store = RedisBucketStore(client)
    found = []
    for key in sorted(client.scan_iter(match=keys.buckets(), count=1000)):
        state = store.state(str(key))
        if state is None:
            continue
        host, project_id, api = str(key).removeprefix(f"{keys.prefix}:rate:").rsplit(":", 2)
        found.append(
            {
                "endpoint": host,
                "project_id": project_id,
                "api": api,
                "configured_per_s": settings.rate.limit_per_s,
                "effective_per_s": round(state.rate, 3),
                "blocked_for_s": round(max(0.0, state.blocked_until - now), 3),
                "lane_shares": _shares(state.lanes),
            }
        )
    return found


def _shares(lanes: LaneState) -> dict[str, Any]:
    """Each lane's share of the bucket's tokens lately (decaying over 10 s), and the bulk
    tenants' virtual times (weighted grants: equal times, fair shares)."""
    total = lanes.interactive + lanes.bulk
    return {
        "interactive": round(lanes.interactive / total, 3) if total else None,
        "bulk": round(lanes.bulk / total, 3) if total else None,
        "tenants": {name: round(virtual, 2) for name, virtual, _ in lanes.tenants},
    }


def _lanes(client: redis.Redis, keys: Keys, settings: Settings) -> dict[str, Any]:
    """The lanes' queues and the bulk tenants' messages waiting to be fed."""
    depth = {lane: int(client.llen(keys.queue(queue_name(settings, lane)))) for lane in LANES}
    names = sorted(cast(set[str], client.smembers(tenants_key(settings))))
    waiting = {n: int(client.llen(keys.queue(tenant_queue(settings, n)))) for n in names}
    named = sorted(tenant_weights(settings))
    return {
        "enabled": settings.lanes,
        "queues": depth,
        "tenants_waiting": waiting,
        "tenants_named": named,
    }


def _breakers(
    client: redis.Redis, keys: Keys, now: float, endpoint: AnyHttpUrl | None
) -> list[dict[str, Any]]:
    """Every breaker written, and the configured endpoint's: a breaker is written only when it
    changes, so one never written is closed (and was never opened)."""
    store = RedisBreakerStore(client)
    found = []
    names = {str(key) for key in client.scan_iter(match=keys.breakers(), count=100)}
    if endpoint is not None:
        names.add(keys.breaker(str(endpoint)))
    for key in sorted(names):
        state = store.state(key) or BreakerState()
        is_open = state.state == "open"
        found.append(
            {
                "endpoint": key.removeprefix(f"{keys.prefix}:breaker:"),
                "state": state.state,
                "opened": state.opened,
                "open_for_s": round(max(0.0, state.open_until - now), 3) if is_open else 0.0,
            }
        )
    return found
