"""kombu's Redis Sentinel transport, with one fix: a worker survives the broker's failover.

When Celery's consumer loses its broker connection it closes the old channel, and kombu's
Sentinel channel, whose connection pool was already dropped, rebuilds it from a connection that
is gone: ``AttributeError: 'NoneType' object has no attribute 'hostname'`` (kombu 5.7), which
Celery takes for an unrecoverable error and the worker stops. Here that case raises a Redis
connection error instead, which the consumer's clean-up ignores as it should; the messages that
channel held stay in kombu's unacked set and come back after the visibility timeout, and the
consumer reconnects to the new master through the sentinels.
"""

from __future__ import annotations

from typing import Any

import redis
from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import redis as kombu_redis

SCHEME = "sentinel"


class SentinelChannel(kombu_redis.SentinelChannel):
    """kombu's Sentinel channel that fails cleanly once its connection is closed."""

    def _connparams(self, asynchronous: bool = False) -> Any:
        if self.connection.client is None:
            raise redis.ConnectionError("the broker connection is closed")
        return super()._connparams(asynchronous)  # type: ignore[misc]


class SentinelTransport(kombu_redis.SentinelTransport):
    """kombu's Sentinel transport with :class:`SentinelChannel`."""

    Channel = SentinelChannel


def use_sentinel_transport() -> None:
    """Make ``sentinel://`` broker URLs use :class:`SentinelTransport` in this process."""
    TRANSPORT_ALIASES[SCHEME] = f"{__name__}:SentinelTransport"
