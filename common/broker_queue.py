"""The broker's queue as operators see it: messages waiting, and taken but not acknowledged."""

from __future__ import annotations

from typing import Any

import redis

from htap_sync.common.keys import Keys


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

    def state(self) -> dict[str, Any]:
        """For operators: the queue's name, depth and unacknowledged messages."""
        return {"name": self.name, "depth": self.depth(), "unacknowledged": self.unacknowledged()}
