"""What the fleet is doing, read from Redis: queue depth, waits, failures, rates, breakers."""

from __future__ import annotations

from typing import Any

import redis

from htap_sync.common.delayed import DelayedSet
from htap_sync.common.keys import Keys
from htap_sync.common.settings import Settings
from htap_sync.worker.breaker import RedisBreakerStore
from htap_sync.worker.bucket import RedisBucketStore
from htap_sync.worker.follow_store import FollowStore


def count_tickets(client: redis.Redis, keys: Keys) -> dict[str, int]:
    """Tickets by state, by scanning their keys (O(tickets): for operators, not for scrapes)."""
    counts = dict.fromkeys(("queued", "running", "retrying", "succeeded", "failed"), 0)
    batch: list[str] = []

    def flush() -> None:
        pipe = client.pipeline(transaction=False)
        for key in batch:
            pipe.hget(key, "state")
        for state in pipe.execute():
            if state in counts:
                counts[state] += 1
        batch.clear()

    for key in client.scan_iter(match=keys.ticket("*"), count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            flush()
    flush()
    return counts


def fleet_view(
    client: redis.Redis, settings: Settings, *, with_tickets: bool = False
) -> dict[str, Any]:
    """A JSON-ready picture of one deployment (its key prefix) on its Redis.

    Each part is read through its own store's ``state()`` (buckets, breakers, the delayed set,
    the follow structures), so no view knows a store's fields. Times are read on Redis's
    clock, the one the rate limit and the breaker use. ``with_tickets`` adds counts of tickets
    by state (a scan of every ticket).
    """
    keys = Keys(settings.key_prefix)
    seconds, micros = client.time()
    now = seconds + micros / 1e6
    queued = int(client.llen(keys.queue(settings.queue)))
    unacked = int(client.hlen(f"{keys.broker_prefix}unacked"))
    view: dict[str, Any] = {
        "queue": {"name": settings.queue, "depth": queued, "unacknowledged": unacked},
        "delayed": DelayedSet(client, key_prefix=settings.key_prefix, clock=lambda: now).state(),
        "failed": int(client.zcard(keys.failed)),
        "rate_limits": _rate_limits(client, keys, settings, now),
        "breakers": _breakers(client, keys, now),
        "following": FollowStore(client, keys).state(),
    }
    if with_tickets:
        view["tickets"] = count_tickets(client, keys)
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
                "configured_per_s": settings.rate_limit_per_s,
                "effective_per_s": round(state.rate, 3),
                "blocked_for_s": round(max(0.0, state.blocked_until - now), 3),
            }
        )
    return found


def _breakers(client: redis.Redis, keys: Keys, now: float) -> list[dict[str, Any]]:
    store = RedisBreakerStore(client)
    found = []
    for key in sorted(client.scan_iter(match=keys.breakers(), count=100)):
        state = store.state(str(key))
        if state is None:
            continue
        is_open = state.state == "open"
        found.append(
            {
                "endpoint": str(key).removeprefix(f"{keys.prefix}:breaker:"),
                "state": state.state,
                "opened": state.opened,
                "open_for_s": round(max(0.0, state.open_until - now), 3) if is_open else 0.0,
            }
        )
    return found
