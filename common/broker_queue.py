"""The broker's queue as operators see it: messages waiting, and taken but not acknowledged."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, NamedTuple

import redis

from htap_sync.common.keys import Keys


class Taken(NamedTuple):
    """A message a worker took and has not acknowledged (kombu's unacked set): its delivery
    tag and the ``(ticket, run)`` pairs it carries (one for the create task, up to a batch's
    for the batch task)."""

    tag: str
    tickets: tuple[tuple[str, str], ...]


class BrokerQueue:
    """One Celery queue on Redis, read where kombu keeps it (under the deployment's prefix).

    Args:
        client: a ``decode_responses=True`` redis-py client.
        keys: the deployment's key names.
        name: the queue's name (``HTAP_SYNC_QUEUE``).
    """

    def __init__(self, client: redis.Redis, keys: Keys, name: str) -> None:
        self._redis = client
        self._keys = keys
        self.name = name

    def depth(self) -> int:
        """How many messages wait in the queue."""
        return int(self._redis.llen(self._keys.queue(self.name)))

    def unacknowledged(self) -> int:
        """How many messages workers took and have not acknowledged (every queue's)."""
        return int(self._redis.hlen(f"{self._keys.broker_prefix}unacked"))

    def taken_before(self, before: float, *, limit: int = 200) -> list[Taken]:
        """The messages taken before ``before`` (epoch s) and not yet acknowledged, oldest
        first, at most ``limit``. A message that is not one of ours (or not JSON) is left
        out: this reads what kombu keeps, untrusted like any message."""
        index = f"{self._keys.broker_prefix}unacked_index"
        tags: list[str] = list(
            self._redis.zrangebyscore(index, "-inf", before, start=0, num=limit)  # type: ignore[arg-type]
        )
        if not tags:
            return []
        raws: list[str | bytes | None] = self._redis.hmget(
            f"{self._keys.broker_prefix}unacked", tags
        )
        taken = []
        for tag, raw in zip(tags, raws, strict=True):
            tickets = tickets_of(raw) if raw is not None else ()
            if tickets:
                taken.append(Taken(tag, tickets))
        return taken

    def state(self) -> dict[str, Any]:
        """For operators: the queue's name, depth and unacknowledged messages."""
        return {"name": self.name, "depth": self.depth(), "unacknowledged": self.unacknowledged()}


def tickets_of(raw: str | bytes) -> tuple[tuple[str, str], ...]:
    """The ``(ticket, run)`` pairs of one entry of kombu's unacked hash (``[message, exchange,
    routing key]``, the message as the Redis transport stores it); () when it is not a message
    of ours."""
    try:
        message = json.loads(raw)[0]
        body: Any = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        kwargs = json.loads(body)[1]
        if "items" in kwargs:
            pairs = [(item[0], item[1]) for item in kwargs["items"]]
        else:
            pairs = [(kwargs["ticket"], kwargs["run"])]
    except (ValueError, TypeError, KeyError, IndexError, binascii.Error):
        return ()
    return tuple((t, r) for t, r in pairs if isinstance(t, str) and isinstance(r, str))
