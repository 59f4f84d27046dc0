"""What the fleet is doing, read from Redis: queue depth, waits, failures, rates, breakers."""

from __future__ import annotations

from typing import Any, cast

import redis

from htap_sync.common.keys import Keys
from htap_sync.common.settings import Settings


def _num(value: str | None) -> float:
    return float(value) if value not in (None, "") else 0.0


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

    Times are read on Redis's clock, the one the rate limit and the breaker use.
    ``with_tickets`` adds counts of tickets by state (a scan of every ticket).
    """
    keys = Keys(settings.key_prefix)
    seconds, micros = client.time()
    now = seconds + micros / 1e6
    pipe = client.pipeline(transaction=False)
    pipe.llen(keys.queue(settings.queue))
    pipe.hlen(f"{keys.broker_prefix}unacked")
    pipe.zcard(keys.delayed)
    pipe.zrange(keys.delayed, 0, 0, withscores=True)
    pipe.zcard(keys.failed)
    queued, unacked, delayed, first, failed = pipe.execute()
    view: dict[str, Any] = {
        "queue": {"name": settings.queue, "depth": queued, "unacknowledged": unacked},
        "delayed": {
            "depth": delayed,
            "next_due_in_s": round(first[0][1] - now, 3) if first else None,
        },
        "failed": failed,
        "rate_limits": [],
        "breakers": [],
    }
    for key in sorted(client.scan_iter(match=keys.buckets(), count=1000)):
        h = cast(dict[str, str], client.hgetall(key))
        host, project_id, api = str(key).removeprefix(f"{keys.prefix}:rate:").rsplit(":", 2)
        view["rate_limits"].append(
            {
                "endpoint": host,
                "project_id": project_id,
                "api": api,
                "configured_per_s": settings.rate_limit_per_s,
                "effective_per_s": round(_num(h.get("rate")), 3),
                "blocked_for_s": round(max(0.0, _num(h.get("blocked_until")) - now), 3),
            }
        )
    for key in sorted(client.scan_iter(match=keys.breakers(), count=100)):
        h = cast(dict[str, str], client.hgetall(key))
        view["breakers"].append(
            {
                "endpoint": str(key).removeprefix(f"{keys.prefix}:breaker:"),
                "state": h.get("state", "closed"),
                "opened": int(_num(h.get("opened"))),
                "open_for_s": round(max(0.0, _num(h.get("open_until")) - now), 3)
                if h.get("state") == "open"
                else 0.0,
            }
        )
    if with_tickets:
        view["tickets"] = count_tickets(client, keys)
    return view
