"""kombu's Redis transports, with one fix: a worker survives the broker's failover or restart.

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


class _ClosedFailsCleanly:
    """A kombu Redis channel whose closed connection raises a Redis connection error."""

    connection: Any

    def _connparams(self, asynchronous: bool = False) -> Any:
        if self.connection.client is None:
            raise redis.ConnectionError("the broker connection is closed")
        return super()._connparams(asynchronous)  # type: ignore[misc]


class Channel(_ClosedFailsCleanly, kombu_redis.Channel):
    """kombu's Redis channel that fails cleanly once its connection is closed (the same
    crash hits the plain transport when a late ack meets a Redis restart)."""


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with :class:`Channel`."""

    Channel = Channel


class SentinelChannel(_ClosedFailsCleanly, kombu_redis.SentinelChannel):
    """kombu's Sentinel channel that fails cleanly once its connection is closed."""


class SentinelTransport(kombu_redis.SentinelTransport):
    """kombu's Sentinel transport with :class:`SentinelChannel`."""

    Channel = SentinelChannel


def use_fixed_transports() -> None:
    """Make ``redis://`` and ``sentinel://`` broker URLs use the transports above here."""
    TRANSPORT_ALIASES["redis"] = f"{__name__}:Transport"
    TRANSPORT_ALIASES[SCHEME] = f"{__name__}:SentinelTransport"
