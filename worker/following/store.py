"""Which created tasks the fleet follows, and when each instance's next round is due (Redis).

Tickets are grouped by instance (``project_id/instance_id``): a round makes one list call per
instance, whatever the number of its tickets. ``follow:due`` holds each instance's next round;
a worker claims a due instance by pushing its score forward, so a round is run by one worker,
and a worker killed mid-round only delays the next one. Each claim carries a fencing token
(``follow:fence``, a counter per instance): the round renews its claim while it runs, however
long its calls take, and its writes are refused once another worker took the instance over.
``follow:tasks:<instance>`` maps each followed ticket to what a round needs (task name, job
id, deadline, last job status). Each round's verdict is written to the ticket's own hash as
``sync`` (JSON), where callers read it; a final one is never overwritten, and a ticket that
left the follow set is never put back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import redis

from htap_sync.common.keys import Keys
from htap_sync.common.models import ReplicationRequest
from htap_sync.common.scripts import script
from htap_sync.common.sync_info import SyncInfo, SyncState
from htap_sync.common.tickets.claims import Following
from htap_sync.worker.following.judge import Followed

_FOLLOWING = SyncInfo(state=SyncState.FOLLOWING).model_dump_json(exclude_none=True)


@dataclass(frozen=True)
class Round:
    """A worker's claim on one instance's round: the instance and the claim's fencing token."""

    ref: str
    token: str


def instance_ref(project_id: str, instance_id: str) -> str:
    """The name of one instance in the follow structures."""
    return f"{project_id}/{instance_id}"


class FollowStore:
    """The follow structures of one deployment on its Redis.

    Args:
        client: a redis-py client with ``decode_responses=True``.
        keys: the deployment's key names.
    """

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys
        self._claim = script(client, __name__, "claim.lua")
        self._renew = script(client, __name__, "renew.lua")
        self._record = script(client, __name__, "record.lua")
        self._next = script(client, __name__, "next.lua")

    def enroll(
        self, ticket: str, item: Followed, *, project_id: str, instance_id: str, first_at: float
    ) -> None:
        """Start following a ticket's task; its instance's next round is at ``first_at`` at most.

        Idempotent: enrolling again replaces the entry and keeps an earlier round.
        """
        ref = instance_ref(project_id, instance_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.keys.follow_tasks(ref), ticket, _entry(item))
        # LT adds a new instance and never pushes an instance's earlier round later.
        pipe.zadd(self.keys.follow_due, {ref: first_at}, lt=True)
        pipe.hset(self.keys.ticket(ticket), "sync", _FOLLOWING)
        pipe.execute()

    def claim_due(self, now: float, *, hold_s: float, limit: int = 16) -> list[Round]:
        """Instances due for a round, each held for ``hold_s`` from any other worker (renew
        the hold with :meth:`renew` while the round runs)."""
        found = self._claim(
            keys=[self.keys.follow_due, self.keys.follow_fence], args=[now, hold_s, limit]
        )
        return [Round(str(found[i]), str(found[i + 1])) for i in range(0, len(found), 2)]

    def renew(self, claimed: Round, until: float) -> bool:
        """Hold a round's instance until ``until``; False once another worker took it over."""
        keys = [self.keys.follow_due, self.keys.follow_fence]
        return bool(self._renew(keys=keys, args=[claimed.ref, claimed.token, until]))

    def members(self, ref: str) -> list[Followed]:
        """The tickets followed on an instance."""
        raw: dict[str, str] = self.redis.hgetall(self.keys.follow_tasks(ref))  # type: ignore[assignment]
        return [_followed(ticket, text) for ticket, text in sorted(raw.items())]

    def record(
        self, claimed: Round, item: Followed, info: SyncInfo, *, failing_since: float | None = None
    ) -> bool:
        """Write a round's verdict on the ticket; a final one ends the ticket's following.

        Refused (False) when the round lost its claim, or the ticket is no longer followed.
        """
        keep = replace(item, job_status=info.job_status, failing_since=failing_since)
        ref = claimed.ref
        return bool(
            self._record(
                keys=[
                    self.keys.follow_tasks(ref),
                    self.keys.ticket(item.ticket),
                    self.keys.follow_fence,
                ],
                args=[
                    item.ticket,
                    info.model_dump_json(exclude_none=True),
                    "1" if info.state.final else "0",
                    _entry(keep),
                    ref,
                    claimed.token,
                ],
            )
        )

    def schedule(self, claimed: Round, at: float) -> bool:
        """Set the instance's next round; False (and forgotten) when nothing is left there,
        or (left alone) when the round lost its claim."""
        ref = claimed.ref
        keys = [self.keys.follow_due, self.keys.follow_tasks(ref), self.keys.follow_fence]
        return bool(self._next(keys=keys, args=[ref, at, claimed.token]))

    def state(self) -> dict[str, Any]:
        """For operators: how many instances and tickets are followed, the next round's time."""
        refs: list[tuple[str, float]] = self.redis.zrange(  # type: ignore[assignment]
            self.keys.follow_due, 0, -1, withscores=True
        )
        pipe = self.redis.pipeline(transaction=False)
        for ref, _ in refs:
            pipe.hlen(self.keys.follow_tasks(ref))
        counts = pipe.execute() if refs else []
        return {
            "instances": len(refs),
            "tickets": int(sum(counts)),
            "next_round_at": min((score for _, score in refs), default=None),
        }


def _entry(item: Followed) -> str:
    entry: dict[str, Any] = {
        "task_name": item.task_name,
        "job_id": item.job_id,
        "deadline": item.deadline,
        "job_status": item.job_status,
    }
    if item.failing_since is not None:
        entry["failing_since"] = item.failing_since
    if item.lane is not None:
        entry["lane"] = item.lane
    if item.tenant is not None:
        entry["tenant"] = item.tenant
    return json.dumps(entry, separators=(",", ":"))


def _followed(ticket: str, text: str) -> Followed:
    data = json.loads(text)
    return Followed(
        ticket=ticket,
        task_name=str(data["task_name"]),
        job_id=data.get("job_id"),
        deadline=float(data["deadline"]),
        job_status=data.get("job_status"),
        failing_since=data.get("failing_since"),
        lane=data.get("lane"),
        tenant=data.get("tenant"),
    )


class Enroller:
    """What ``process_ticket`` calls when a task exists: follow it for ``timeout_s`` at most,
    its instance's first round ``first_s`` from now at the latest."""

    def __init__(
        self,
        store: FollowStore,
        *,
        timeout_s: float,
        first_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._timeout_s = timeout_s
        self._first_s = first_s
        self._clock = clock

    def __call__(self, ticket: str, request: ReplicationRequest, job_id: str | None) -> None:
        """Enroll the ticket now (one transaction)."""
        self.following(ticket, request, job_id).enroll()

    def following(self, ticket: str, request: ReplicationRequest, job_id: str | None) -> Following:
        """The enrolment as the ticket store's ``finish`` writes it with the success (the
        same writes as :meth:`FollowStore.enroll`, in the same step as the result)."""
        now = self._clock()
        item = Followed(
            ticket,
            request.task_name,
            job_id,
            deadline=now + self._timeout_s,
            lane=request.lane,
            tenant=request.tenant,
        )
        first_at = now + self._first_s
        ref = instance_ref(request.project_id, request.instance_id)
        store = self._store

        def enroll() -> None:
            store.enroll(
                ticket,
                item,
                project_id=request.project_id,
                instance_id=request.instance_id,
                first_at=first_at,
            )

        return Following(
            enroll=enroll,
            where=store.redis,
            tasks_key=store.keys.follow_tasks(ref),
            due_key=store.keys.follow_due,
            ref=ref,
            entry=_entry(item),
            first_at=first_at,
            sync=_FOLLOWING,
        )


def enroller(
    store: FollowStore,
    *,
    timeout_s: float,
    first_s: float,
    clock: Callable[[], float] = time.time,
) -> Enroller:
    """What ``process_ticket`` calls when a task exists: follow it for ``timeout_s`` at most."""
    return Enroller(store, timeout_s=timeout_s, first_s=first_s, clock=clock)
