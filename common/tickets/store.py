"""The ticket store in Redis: one hash per ticket, every state change atomic (Lua).

A ticket is written before its message is queued and read by callers polling for results.
This module holds what producers and callers use (submit, read); the worker's claim protocol
is :mod:`~htap_sync.common.tickets.claims` (on Redis:
:mod:`~htap_sync.common.tickets.claims_redis`; in memory, for tests:
:mod:`~htap_sync.common.tickets.claims_memory`). The Lua scripts are ``.lua`` files beside them.

* ``run`` names the current submission: a message carrying another run is stale and dropped,
  so a re-driven ticket is never acted on by a leftover message.
* ``holder`` names the delivery that holds the ticket's lease: a delivery whose lease was taken
  over (it was too slow) can no longer write, nor post.
* ``in_doubt`` is set *before* every create call and cleared only by an answer proving nothing
  was created, so a worker that dies mid-call leaves a ticket the next delivery reconciles.
* A ticket that waits for its next attempt is put in the durable delayed set in the same
  script that marks it ``retrying``; a failed one is indexed for ``htap-sync failed``.
* Every unfinished ticket also has a *watchdog* entry in the delayed set: when it is queued
  and whenever a delivery claims it, its entry moves to "now + lease + ``watch_s``". If no
  one finishes or reschedules it by then (its message was lost: a Redis crash between the
  broker's pop and its unacked record loses one), the mover queues it again. A spare wake-up
  costs one message that the claim turns away; a finished ticket's entry is removed.
* Each create call and reconciliation is noted in a bounded history.

In-flight tickets never expire; finished ones (and their history) expire after ``result_ttl_s``.

With replicas that a failover may promote (Sentinel), a read shows only what the replicas
hold: a master cut off by a failover may still take a write for a moment and then drop it, so
a status read from it could show a success that is later gone. Each read is followed, on the
same connection, by a one-key write and ``WAIT``; when the replicas acknowledge that write,
they hold everything written before it, and so everything the read saw. Otherwise the read
raises :class:`ReadNotReplicated` (an outage: callers ride it out and read again).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import cast

import redis

from htap_sync.common.errors import TicketConflict, TicketNotFound
from htap_sync.common.keys import Keys
from htap_sync.common.models import (
    Attempt,
    ErrorPayload,
    OperationRequest,
    ReplicationRequest,
    TicketState,
    TicketStatus,
)
from htap_sync.common.scripts import script
from htap_sync.common.sync_info import SyncInfo
from htap_sync.common.tickets.ids import operation_ticket

Clock = Callable[[], float]
HISTORY_LIMIT = 20


@dataclass
class SubmitCall:
    """One call of ``submit.lua``: its keys and arguments, and the ticket of each item."""

    keys: list[str]
    args: list[str]
    tickets: list[str] = field(default_factory=list)


class ReadNotReplicated(redis.ConnectionError):
    """A read saw what the replicas do not hold yet (a failover under way): read again."""

    def __init__(self, acked: int, wanted: int) -> None:
        super().__init__(f"{acked} of {wanted} replicas hold what was read")


class Submitted(StrEnum):
    """What a submission did: queued anew, found the same request, or re-drove a failure."""

    QUEUED = "queued"
    DUPLICATE = "duplicate"
    REDRIVEN = "redriven"


def iso(epoch: float) -> str:
    """An epoch time as ISO 8601 in UTC, to the millisecond."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


class TicketStore:
    """Tickets in Redis under ``{key_prefix}:ticket:{id}``.

    Args:
        client: a redis-py client created with ``decode_responses=True``.
        key_prefix: namespace of every key (several deployments can share one Redis).
        result_ttl_s: how long finished tickets stay readable.
        clock: seconds since the epoch; injected in tests.
        watch_s: how long past its lease (or its submission) an unfinished ticket may go
            without news before the watchdog queues it again (the visibility timeout).
        read_replicas: how many replicas must hold what a status read shows (0: none; with
            Sentinel, the in-doubt mark's number), within ``read_wait_s`` seconds.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        key_prefix: str,
        result_ttl_s: int,
        watch_s: float = 300.0,
        clock: Clock = time.time,
        read_replicas: int = 0,
        read_wait_s: float = 2.0,
    ) -> None:
        self.redis = client
        self._read_replicas = read_replicas
        self._read_wait_ms = max(1, int(read_wait_s * 1000))
        self._ttl_s = result_ttl_s
        self._watch_s = watch_s
        self._clock = clock
        self.keys = Keys(key_prefix)
        self.failed_key = self.keys.failed
        self.delayed_key = self.keys.delayed
        self._submit = script(client, __name__, "submit.lua")
        self._submit_operation = script(client, __name__, "operation_submit.lua")
        self._recreate = script(client, __name__, "recreate.lua")

    def key(self, ticket: str) -> str:
        """The Redis key of a ticket."""
        return self.keys.ticket(ticket)

    def history_key(self, ticket: str) -> str:
        """The Redis key of a ticket's attempt history."""
        return self.keys.history(ticket)

    # -- producer side -------------------------------------------------------------------------

    def submit(
        self,
        request: ReplicationRequest,
        *,
        run: str | None = None,
        queue_key: str = "",
        message: str = "",
    ) -> tuple[str, str, Submitted]:
        """Record a request as queued, unless its ticket is taken.

        Args:
            request: the validated request.
            run: the run id (a new one when omitted); ``message`` must carry the same.
            queue_key: the broker list to push ``message`` onto, with the ticket, atomically.
            message: the broker message, or "" to queue nothing here (the caller sends it).

        Returns:
            ``(ticket, run, what)``; nothing is queued when ``what`` is ``DUPLICATE``.

        Raises:
            TicketConflict: a different request holds the name and has not failed.
        """
        run = run or uuid.uuid4().hex
        call = self.submit_call([(request, run, message, "")], queue_key)
        [(outcome, state)] = _answers(self._submit(keys=call.keys, args=call.args))
        if outcome == "conflict":
            raise TicketConflict(request.ticket, state)
        return request.ticket, run, Submitted(outcome)

    def submit_call(
        self,
        items: Sequence[tuple[ReplicationRequest, str, str, str]],
        queue_key: str,
        frame: Sequence[str] = ("", "", "", ""),
    ) -> SubmitCall:
        """One call of the submit script (``submit.lua``): its keys, arguments and tickets.

        Args:
            items: ``(request, run, message, item)`` of each ticket: its own message, or
                its item (JSON text) in the batch message ``frame``; "" for none.
            queue_key: the broker list messages go onto.
            frame: the batch message around its items (``common.messages.BatchFrame``:
                head, tail, body head, body tail).
        """
        now = self._clock()
        call = SubmitCall(
            keys=[self.failed_key, self.delayed_key, queue_key or "_"],
            args=[iso(now), repr(now + self._watch_s), *frame],
        )
        for request, run, message, item in items:
            ticket = request.ticket
            call.keys += [self.key(ticket), self.history_key(ticket)]
            call.args += [request.fingerprint(), run, ticket, message, item, request.route()]
            call.tickets.append(ticket)
        return call

    def submit_many(
        self, items: list[tuple[ReplicationRequest, str, str, str]]
    ) -> list[tuple[str, str, str]]:
        """Submit many ``(request, run, queue_key, message)`` in one pipelined round trip.

        Returns:
            ``(ticket, outcome, state)`` for each, outcome ``queued``, ``duplicate``,
            ``redriven`` or ``conflict`` (nothing raised: the caller reports per item).
        """
        return self._run_submits(
            self.submit_call([(request, run, message, "")], queue_key)
            for request, run, queue_key, message in items
        )

    def submit_batches(
        self,
        batches: Sequence[tuple[Sequence[str], Sequence[tuple[ReplicationRequest, str, str]]]],
        queue_key: str,
    ) -> list[tuple[str, str, str]]:
        """Submit batches of requests, each queued as one message, in one round trip.

        Args:
            batches: ``(frame, items)``: ``frame`` is the message around its items
                (``common.messages.BatchFrame``: head, tail, body head, body tail);
                each item is ``(request, run, item_json)``.
            queue_key: the broker list the messages go onto.

        Each batch is one call of the submit script: its tickets are recorded as by
        :meth:`submit`, and one message carries the items of those it recorded (queued or
        re-driven), leaving out duplicates and conflicts (no message when none is left).
        Never a ticket without its message, nor a message without its tickets.

        Returns:
            ``(ticket, outcome, state)`` for each item, in order (as :meth:`submit_many`).
        """
        return self._run_submits(
            self.submit_call(
                [(request, run, "", item) for request, run, item in items], queue_key, frame
            )
            for frame, items in batches
        )

    def _run_submits(self, calls: Iterable[SubmitCall]) -> list[tuple[str, str, str]]:
        """Run calls of the submit script in one pipelined round trip; ``(ticket, outcome,
        state)`` for each of their tickets, in order."""
        pipe = self.redis.pipeline(transaction=False)
        tickets: list[str] = []
        for call in calls:
            self._submit(keys=call.keys, args=call.args, client=pipe)
            tickets += call.tickets
        replies = [reply for answers in pipe.execute() for reply in _answers(answers)]
        return [
            (ticket, str(outcome), str(state))
            for ticket, (outcome, state) in zip(tickets, replies, strict=True)
        ]

    def submit_operation(
        self, operation: OperationRequest, *, run: str, queue_key: str, message: str
    ) -> tuple[str, str, str]:
        """Record an operation's ticket as queued and push its message, unless its ticket is
        taken (``operation_submit.lua``; see :mod:`htap_sync.common.operations`). The ticket
        notes the number of its instance's last shared list call (``look_after``): its first
        look uses a list call made after it was submitted.

        Returns:
            ``(ticket, outcome, state)``, outcome ``queued``, ``duplicate``, ``redriven`` or
            ``conflict`` (nothing queued for the last two but re-drives).
        """
        ticket = operation_ticket(operation.project_id, operation.instance_id, operation.task_name)
        now = self._clock()
        keys = [self.key(ticket), self.history_key(ticket), self.failed_key, self.delayed_key]
        again = "0" if operation.operation == "modify" else "1"
        args = [iso(now), repr(now + self._watch_s), operation.fingerprint(), run, ticket]
        epoch = self.keys.list_epoch(f"{operation.project_id}/{operation.instance_id}")
        reply = self._submit_operation(keys=[*keys, queue_key, epoch], args=[*args, message, again])
        [(outcome, state)] = _answers(reply)
        return ticket, outcome, state

    def make_recreatable(self, ticket: str, why: str) -> bool:
        """Mark a succeeded ticket whose task failed to sync (deleted since) failed and not in
        doubt, so that submitting its request again re-drives it (``recreate.lua``).

        Returns:
            False when the ticket is not succeeded with a failed sync (nothing changed).
        """
        error = ErrorPayload(error_code="HTAP_SYNC.RECREATE", error_msg=why).model_dump_json()
        return bool(self._recreate(keys=[self.key(ticket)], args=[error, iso(self._clock())]))

    def get(self, ticket: str) -> TicketStatus:
        """The ticket's status.

        Raises:
            TicketNotFound: unknown ticket, or a finished one whose result expired.
        """
        found = self.get_many([ticket])[ticket]
        if found is None:
            raise TicketNotFound(ticket)
        return found

    def get_many(self, tickets: Iterable[str]) -> dict[str, TicketStatus | None]:
        """Statuses of many tickets in one round trip; None for unknown ones.

        Raises:
            ReadNotReplicated: fewer than ``read_replicas`` replicas hold what was read.
        """
        tickets = list(tickets)
        pipe = self.redis.pipeline(transaction=False)
        for ticket in tickets:
            pipe.hgetall(self.key(ticket))
            pipe.lrange(self.history_key(ticket), 0, -1)
        if self._read_replicas:  # then: do the replicas hold all that was read?
            pipe.incr(self.keys.read_fence)
            pipe.execute_command("WAIT", self._read_replicas, self._read_wait_ms)  # type: ignore[no-untyped-call]
        replies = pipe.execute()
        if self._read_replicas and int(replies[-1]) < self._read_replicas:
            raise ReadNotReplicated(int(replies[-1]), self._read_replicas)
        out: dict[str, TicketStatus | None] = {}
        for i, ticket in enumerate(tickets):
            raw, history = replies[2 * i], replies[2 * i + 1]
            out[ticket] = status_of(ticket, raw, history) if raw else None
        return out

    def failed(self, *, limit: int = 1000) -> list[TicketStatus]:
        """Failed tickets, most recent failure first (expired ones are dropped from the index)."""
        self.redis.zremrangebyscore(self.failed_key, "-inf", self._clock() - self._ttl_s)
        tickets = cast(list[str], self.redis.zrevrange(self.failed_key, 0, limit - 1))
        found = self.get_many(tickets)
        return [s for s in found.values() if s is not None and s.state is TicketState.FAILED]

    def due_at(self, ticket: str, run: str) -> float | None:
        """When the ticket's run is next looked at (its retry, or its watchdog), on the store's
        clock; None when nothing is scheduled (finished, or another run)."""
        score = self.redis.zscore(self.delayed_key, f"{ticket}:{run}")
        return None if score is None else float(score)

    def failed_count(self) -> int:
        """How many tickets the failed index holds (expired ones included until ``failed``)."""
        return int(self.redis.zcard(self.failed_key))

    def count_by_state(self) -> dict[str, int]:
        """Tickets by state, by scanning their keys (O(tickets): for operators, not scrapes)."""
        found = {state.value: 0 for state in TicketState}
        batch: list[str] = []

        def flush() -> None:
            pipe = self.redis.pipeline(transaction=False)
            for key in batch:
                pipe.hget(key, "state")
            for state in pipe.execute():
                if state in found:
                    found[state] += 1
            batch.clear()

        for key in self.redis.scan_iter(match=self.keys.ticket("*"), count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                flush()
        flush()
        return found


def _answers(reply: object) -> list[tuple[str, str]]:
    """The submit script's answer (``outcome state`` per ticket, joined by ``,``) as pairs."""
    pairs = [answer.split(" ") for answer in str(reply).split(",")]
    return [(outcome, state) for outcome, state in pairs]


def _request_of(text: str) -> ReplicationRequest | OperationRequest:
    """A ticket's recorded request: a creation's, or an operation's (it names its operation)."""
    # A creation's text never holds this key (a quote inside a value is escaped): no parse
    # more for the common case, which bulk waits read by the thousand.
    if '"operation":' in text:
        return OperationRequest.model_validate_json(text)
    return ReplicationRequest.model_validate_json(text)


def with_route(request: str, raw: Mapping[str, str]) -> str:
    """A stored request (its fingerprint) with the lane and tenant it was submitted with."""
    route = raw.get("route")
    return request if not route else request[:-1] + "," + route[1:]


def status_of(ticket: str, raw: dict[str, str], history: list[str]) -> TicketStatus:
    """A ticket's status from its hash and its history notes, as the stores keep them."""
    error = raw.get("error")
    return TicketStatus(
        ticket=ticket,
        state=TicketState(raw["state"]),
        job_id=raw.get("job_id") or None,
        error=ErrorPayload.model_validate_json(error) if error else None,
        attempts=int(raw.get("attempts", "0")),
        reconciled=raw.get("reconciled") == "1",
        job_id_reason=raw.get("job_id_reason") or None,
        found=json.loads(raw["found"]) if raw.get("found") else None,
        sync=SyncInfo.model_validate_json(raw["sync"]) if raw.get("sync") else None,
        request=_request_of(with_route(raw["request"], raw)),
        history=[Attempt.model_validate_json(item) for item in history],
        created_at=datetime.fromisoformat(raw["created_at"]),
        updated_at=datetime.fromisoformat(raw["updated_at"]),
    )
