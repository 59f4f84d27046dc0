"""A run's Redis traffic, counted three ways: in the worker, in this process, and by Redis.

The worker and this process (producer, polling) count their own round trips and commands
(``bench.redis_count``); redis-server's ``INFO`` counts every command it ran, those Lua
scripts run inside it included, and every read event on its sockets. What Redis ran that no
client sent is what the scripts ran.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from bench.redis_count import Counts, Tally, counting, fresh_counts

# How long the worker's Redis traffic is counted while it has nothing to do.
IDLE_S = 1.0


def server_counts(client: redis.Redis) -> Counts:
    """What redis-server counted so far: read events as round trips, commands by name.

    Subcommands (``client|setinfo``) count under their command (``CLIENT``), as clients
    name them.
    """
    stats = client.info("stats")
    commands: dict[str, int] = {}
    for key, value in client.info("commandstats").items():
        name = str(key).removeprefix("cmdstat_").split("|")[0].upper()
        commands[name] = commands.get(name, 0) + int(value["calls"])
    return Counts(int(stats["total_reads_processed"]), commands)


def minus(whole: Counts, *parts: Counts) -> Counts:
    """``whole`` less ``parts``, name by name, never below 0."""
    rest = dict(whole.commands)
    for part in parts:
        for name, count in part.commands.items():
            rest[name] = rest.get(name, 0) - count
    trips = whole.round_trips - sum(p.round_trips for p in parts)
    return Counts(trips, {n: c for n, c in rest.items() if c > 0})


@dataclass(frozen=True)
class RedisTraffic:
    """Redis traffic of one run: counted by the worker, this process and redis-server."""

    worker: Counts
    producer: Counts
    here: Counts  # this process over the whole run: the producer, polling, INFO
    server: Counts  # round_trips are redis-server's read events
    idle: Counts
    idle_s: float

    @property
    def in_scripts(self) -> Counts:
        """Commands Redis ran that no client sent: those the Lua scripts of the producer and
        the worker ran."""
        return minus(self.server, self.worker, self.here)


class Traffic:
    """Counts a run's Redis traffic when the worker writes its counts to ``path``.

    Call :meth:`begin` after the warm-up, :meth:`end` when the run is over, and :meth:`close`
    in any case (it puts redis-py back as it was).
    """

    def __init__(self, path: Path | None, redis_url: str) -> None:
        self.path = path
        self._url = redis_url
        self._stack = ExitStack()
        self._tally = Tally()
        self._client: redis.Redis | None = None
        self._start = self._server_start = self._producer = self._idle = Counts()
        self._idle_s = 0.0

    def begin(self) -> None:
        """The worker idle for ``IDLE_S``, then everybody's counts at the start of the run."""
        if self.path is None:
            return
        before = fresh_counts(self.path)
        started = time.monotonic()
        time.sleep(IDLE_S)
        idle = fresh_counts(self.path)
        self._idle_s = time.monotonic() - started
        self._idle = idle - before
        self._tally = self._stack.enter_context(counting())
        self._client = redis.Redis.from_url(self._url)
        self._server_start = server_counts(self._client)
        self._start = fresh_counts(self.path)

    @contextmanager
    def producing(self) -> Iterator[None]:
        """This process's Redis traffic in the block is the producer's."""
        before = self._tally.counts()
        yield
        self._producer = self._tally.counts() - before

    def end(self) -> RedisTraffic | None:
        """The counts since :meth:`begin`, once every command sent so far is counted."""
        if self.path is None or self._client is None:
            return None
        worker = fresh_counts(self.path) - self._start
        server = server_counts(self._client) - self._server_start
        here = self._tally.counts()
        self.close()
        return RedisTraffic(worker, self._producer, here, server, self._idle, self._idle_s)

    def close(self) -> None:
        """Stop counting this process; close the client that read ``INFO``."""
        if self._client is not None:
            self._client.close()
            self._client = None
        self._stack.close()
