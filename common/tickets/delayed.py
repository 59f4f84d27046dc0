"""The durable delayed set: tickets waiting for their next attempt, in a Redis sorted set.

A wait longer than the broker's visibility timeout must not sit in the broker: Celery on Redis
would deliver an unacknowledged countdown message again. So a ticket that waits is recorded
here (member ``ticket:run``, score = when it is due, atomically with its ``retrying`` state) and
its message is acknowledged. Movers in every worker move due members back into the queue.

A mover *claims* due members by pushing their score ``claim_s`` into the future, sends them, and
removes them only if the score is still its claim. A mover that dies mid-way leaves members that
fall due again after ``claim_s``: nothing is lost, and the ticket store drops any duplicate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import redis

from htap_sync.common.keys import Keys
from htap_sync.common.scripts import script


@dataclass(frozen=True)
class Due:
    """A claimed member of the delayed set."""

    ticket: str
    run: str
    claim: str  # the score the claim wrote


class DelayedSet:
    """Claims and releases due tickets. Scheduling happens in the ticket store's retry script.

    Args:
        client: a ``decode_responses=True`` redis-py client.
        key_prefix: the deployment's key prefix.
        clock: seconds since the epoch; injected in tests.
    """

    def __init__(
        self, client: redis.Redis, *, key_prefix: str, clock: Callable[[], float] = time.time
    ) -> None:
        self._redis = client
        self.key = Keys(key_prefix).delayed
        self._clock = clock
        self._prefix = key_prefix
        self._claim = script(client, __name__, "claim_due.lua")
        self._release = script(client, __name__, "release_due.lua")
        self._expedite = script(client, __name__, "expedite.lua")

    def claim_due(self, *, limit: int = 100, claim_s: float = 60.0) -> list[Due]:
        """Take up to ``limit`` due members for ``claim_s`` seconds."""
        now = self._clock()
        claim = repr(float(now + claim_s))
        members = cast(list[str], self._claim(keys=[self.key], args=[now, claim, limit]))
        out = []
        for member in members:
            ticket, _, run = member.partition(":")
            out.append(Due(ticket=ticket, run=run, claim=claim))
        return out

    def release(self, due: Due) -> bool:
        """Remove a member that was sent, unless it was rescheduled meanwhile."""
        member = f"{due.ticket}:{due.run}"
        return bool(self._release(keys=[self.key], args=[member, due.claim]))

    def server_id(self) -> str:
        """The Redis server's ``run_id``: it changes whenever Redis restarts."""
        return str(self._redis.info("server")["run_id"])

    def postpone(self, due: Due, delay_s: float) -> None:
        """Look at a claimed member again ``delay_s`` from now (unless rescheduled meanwhile)."""
        member = f"{due.ticket}:{due.run}"
        self._release(keys=[self.key], args=[member, due.claim, self._clock() + delay_s])

    def expedite(self) -> int:
        """After a Redis restart, wake unfinished tickets now (queued) or when their lease ends
        (running), instead of at their watchdog time; returns how many were moved."""
        ticket_prefix = Keys(self._prefix).ticket("")
        return int(self._expedite(keys=[self.key], args=[self._clock(), ticket_prefix]))

    def state(self) -> dict[str, Any]:
        """For operators: how many tickets wait, and in how long the first is due."""
        due = self.next_due_in_s()
        return {"depth": self.depth(), "next_due_in_s": None if due is None else round(due, 3)}

    def depth(self) -> int:
        """How many tickets wait."""
        return int(self._redis.zcard(self.key))

    def next_due_in_s(self) -> float | None:
        """Seconds until the earliest member is due (negative when overdue); None when empty."""
        first = self._redis.zrange(self.key, 0, 0, withscores=True)
        if not first:
            return None
        return float(first[0][1]) - self._clock()
