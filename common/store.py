"""The ticket store in Redis: one hash per ticket, every state change atomic (Lua).

A ticket is written before its message is queued and read by callers polling for results.

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
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, cast

import redis

from htap_sync.common.errors import TicketConflict, TicketNotFound
from htap_sync.common.keys import Keys
from htap_sync.common.models import (
    Attempt,
    ErrorPayload,
    ReplicationRequest,
    TicketState,
    TicketStatus,
)
from htap_sync.common.sync import NO_JOB_ID_REASON, SyncInfo
from htap_sync.common.tickets import ticket_id

Clock = Callable[[], float]
HISTORY_LIMIT = 20

# KEYS: ticket, failed index, history, queue, delayed set. ARGV: fingerprint, run, now (ISO),
# ticket id, message, when the watchdog looks if nothing happened (epoch). ARGV[5] is
# message (pushed onto the queue with the ticket, '' to queue nothing here).
_SUBMIT = """
local state = redis.call('HGET', KEYS[1], 'state')
if state and state ~= 'failed' then
  if redis.call('HGET', KEYS[1], 'request') == ARGV[1] then return {'duplicate', state} end
  return {'conflict', state}
end
-- A re-driven ticket keeps its doubt: if a failed run may have created the task, look first.
local in_doubt = '0'
if state then in_doubt = redis.call('HGET', KEYS[1], 'in_doubt') or '1' end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'request', ARGV[1], 'state', 'queued', 'run', ARGV[2],
  'attempts', 0, 'in_doubt', in_doubt, 'reconciled', 0, 'lease_until', 0, 'holder', '',
  'created_at', ARGV[3], 'updated_at', ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[4])
redis.call('PERSIST', KEYS[3])
if ARGV[5] ~= '' then redis.call('LPUSH', KEYS[4], ARGV[5]) end
redis.call('ZADD', KEYS[5], ARGV[6], ARGV[4] .. ':' .. ARGV[2])
if state then return {'redriven', 'queued'} end
return {'queued', 'queued'}
"""

# KEYS: ticket, delayed set. ARGV: run, now, lease until, now (ISO), holder, watchdog time,
# ticket id.
_BEGIN = """
local h = redis.call('HMGET', KEYS[1], 'state', 'run', 'lease_until', 'in_doubt', 'attempts',
  'request', 'created_at')
local state = h[1]
if not state then return {'missing'} end
if h[2] ~= ARGV[1] then return {'stale'} end
if state == 'succeeded' or state == 'failed' then return {'done'} end
if state == 'running' and tonumber(h[3]) > tonumber(ARGV[2]) then return {'busy'} end
redis.call('HSET', KEYS[1], 'state', 'running', 'lease_until', ARGV[3], 'holder', ARGV[5],
  'updated_at', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[7] .. ':' .. ARGV[1])
return {'ok', h[4], h[5], h[6], h[7], state}
"""

# KEYS: ticket, failed index, history, delayed set.
# ARGV: run, holder ('' for any), attempts delta, ttl (0: keep), now, mark failed ('1'/'0'),
#       due (for the delayed set, '' for none), history note ('' for none), ticket id,
#       then field/value pairs.
# Refuses stale runs, lost holds and finished tickets: a late writer never undoes a result.
_UPDATE = """
local h = redis.call('HMGET', KEYS[1], 'state', 'run', 'holder')
if not h[1] or h[2] ~= ARGV[1] or h[1] == 'succeeded' or h[1] == 'failed' then return false end
if ARGV[2] ~= '' and h[3] ~= ARGV[2] then return false end
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', tonumber(ARGV[3]))
local fields = {}
for i = 10, #ARGV do fields[#fields + 1] = ARGV[i] end
if #fields > 0 then redis.call('HSET', KEYS[1], unpack(fields)) end
if ARGV[8] ~= '' then
  redis.call('RPUSH', KEYS[3], ARGV[8])
  redis.call('LTRIM', KEYS[3], -HISTORY_LIMIT, -1)
end
if tonumber(ARGV[4]) > 0 then
  redis.call('ZREM', KEYS[4], ARGV[9] .. ':' .. ARGV[1])
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
  redis.call('EXPIRE', KEYS[3], tonumber(ARGV[4]))
end
if ARGV[6] == '1' then redis.call('ZADD', KEYS[2], ARGV[5], ARGV[9]) end
if ARGV[7] ~= '' then redis.call('ZADD', KEYS[4], ARGV[7], ARGV[9] .. ':' .. ARGV[1]) end
return attempts
"""

# KEYS: ticket. ARGV: run. The request of an unfinished ticket of this run, else nil.
_PENDING = """
local h = redis.call('HMGET', KEYS[1], 'state', 'run', 'request')
if h[2] == ARGV[1] and (h[1] == 'retrying' or h[1] == 'running' or h[1] == 'queued') then
  return {h[1], h[3]}
end
return false
"""


class NotReplicated(Exception):
    """Fewer replicas than asked for acknowledged a write in time: do not act on it yet."""

    def __init__(self, acked: int, wanted: int) -> None:
        self.acked = acked
        self.wanted = wanted
        super().__init__(f"{acked} of {wanted} replicas acknowledged the write")


class Submitted(StrEnum):
    """What a submission did: queued anew, found the same request, or re-drove a failure."""

    QUEUED = "queued"
    DUPLICATE = "duplicate"
    REDRIVEN = "redriven"


@dataclass(frozen=True)
class Claim:
    """One delivery's hold on a ticket. Every write of that delivery goes through it."""

    ticket: str
    run: str
    holder: str = ""  # "" writes whoever holds the ticket (a message refused before claiming)
    in_doubt: bool = False
    attempts: int = 0
    fingerprint: str = ""
    created_at: datetime | None = None
    prior: TicketState = TicketState.QUEUED  # the state before this delivery took it


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
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        key_prefix: str,
        result_ttl_s: int,
        watch_s: float = 300.0,
        clock: Clock = time.time,
    ) -> None:
        self.redis = client
        self._ttl_s = result_ttl_s
        self._watch_s = watch_s
        self._clock = clock
        self.keys = Keys(key_prefix)
        self.failed_key = self.keys.failed
        self.delayed_key = self.keys.delayed
        self._submit = client.register_script(_SUBMIT)
        self._begin = client.register_script(_BEGIN)
        self._update = client.register_script(_UPDATE.replace("HISTORY_LIMIT", str(HISTORY_LIMIT)))
        self._pending = client.register_script(_PENDING)

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
        keys, args = self.submit_args(request, run, queue_key, message)
        outcome, state = cast(list[str], self._submit(keys=keys, args=args))
        if outcome == "conflict":
            raise TicketConflict(args[3], state)
        return args[3], run, Submitted(outcome)

    def submit_args(
        self, request: ReplicationRequest, run: str, queue_key: str, message: str
    ) -> tuple[list[str], list[str]]:
        """The keys and arguments of the submit script (for pipelined submissions)."""
        ticket = ticket_id(request.project_id, request.instance_id, request.task_name)
        keys = [
            self.key(ticket),
            self.failed_key,
            self.history_key(ticket),
            queue_key or "_",
            self.delayed_key,
        ]
        now = self._clock()
        args = [request.fingerprint(), run, iso(now), ticket, message, repr(now + self._watch_s)]
        return keys, args

    def submit_many(
        self, items: list[tuple[ReplicationRequest, str, str, str]]
    ) -> list[tuple[str, str, str]]:
        """Submit many ``(request, run, queue_key, message)`` in one pipelined round trip.

        Returns:
            ``(ticket, outcome, state)`` for each, outcome ``queued``, ``duplicate``,
            ``redriven`` or ``conflict`` (nothing raised: the caller reports per item).
        """
        pipe = self.redis.pipeline(transaction=False)
        tickets = []
        for request, run, queue_key, message in items:
            keys, args = self.submit_args(request, run, queue_key, message)
            self._submit(keys=keys, args=args, client=pipe)
            tickets.append(args[3])
        return [
            (ticket, str(outcome), str(state))
            for ticket, (outcome, state) in zip(tickets, pipe.execute(), strict=True)
        ]

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
        """Statuses of many tickets in one round trip; None for unknown ones."""
        tickets = list(tickets)
        pipe = self.redis.pipeline(transaction=False)
        for ticket in tickets:
            pipe.hgetall(self.key(ticket))
            pipe.lrange(self.history_key(ticket), 0, -1)
        replies = pipe.execute()
        out: dict[str, TicketStatus | None] = {}
        for i, ticket in enumerate(tickets):
            raw, history = replies[2 * i], replies[2 * i + 1]
            out[ticket] = self._status(ticket, raw, history) if raw else None
        return out

    def failed(self, *, limit: int = 1000) -> list[TicketStatus]:
        """Failed tickets, most recent failure first (expired ones are dropped from the index)."""
        self.redis.zremrangebyscore(self.failed_key, "-inf", self._clock() - self._ttl_s)
        tickets = cast(list[str], self.redis.zrevrange(self.failed_key, 0, limit - 1))
        found = self.get_many(tickets)
        return [s for s in found.values() if s is not None and s.state is TicketState.FAILED]

    @staticmethod
    def _status(ticket: str, raw: dict[str, str], history: list[str]) -> TicketStatus:
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
            request=ReplicationRequest.model_validate_json(raw["request"]),
            history=[Attempt.model_validate_json(item) for item in history],
            created_at=datetime.fromisoformat(raw["created_at"]),
            updated_at=datetime.fromisoformat(raw["updated_at"]),
        )

    # -- worker side ---------------------------------------------------------------------------

    def begin(self, ticket: str, run: str, *, lease_s: float) -> Claim | str:
        """Take the ticket for one delivery of its message.

        Returns:
            a :class:`Claim`, or why the delivery must do nothing: ``"missing"``, ``"stale"``
            (another run), ``"done"`` (finished), ``"busy"`` (a live delivery holds it).
        """
        now = self._clock()
        holder = uuid.uuid4().hex
        result = cast(
            list[str],
            self._begin(
                keys=[self.key(ticket), self.delayed_key],
                args=[
                    run,
                    now,
                    now + lease_s,
                    iso(now),
                    holder,
                    repr(now + lease_s + self._watch_s),
                    ticket,
                ],
            ),
        )
        if result[0] != "ok":
            return result[0]
        return Claim(
            ticket=ticket,
            run=run,
            holder=holder,
            in_doubt=result[1] == "1",
            attempts=int(result[2]),
            fingerprint=result[3],
            created_at=datetime.fromisoformat(result[4]),
            prior=TicketState(result[5]),
        )

    def pending_request(self, ticket: str, run: str) -> tuple[str, dict[str, Any]] | None:
        """``(state, request)`` of an unfinished ticket of ``run``, else None (stale, done,
        expired)."""
        found = cast(list[str] | None, self._pending(keys=[self.key(ticket)], args=[run]))
        if not found:
            return None
        return found[0], cast(dict[str, Any], json.loads(found[1]))

    def _write(
        self,
        claim: Claim,
        *,
        attempts: int = 0,
        ttl_s: int = 0,
        failed: bool = False,
        due_at: float | None = None,
        note: Attempt | None = None,
        client: redis.client.Pipeline | None = None,
        **fields: Any,
    ) -> bool:
        now = self._clock()
        fields["updated_at"] = iso(now)
        flat: list[Any] = []
        for name, value in fields.items():
            flat += [name, value]
        done = self._update(
            keys=[
                self.key(claim.ticket),
                self.failed_key,
                self.history_key(claim.ticket),
                self.delayed_key,
            ],
            args=[
                claim.run,
                claim.holder,
                attempts,
                ttl_s,
                now,
                int(failed),
                "" if due_at is None else repr(due_at),
                note.model_dump_json() if note else "",
                claim.ticket,
                *flat,
            ],
            client=client,
        )
        return done is not None

    def defer(self, ticket: str, run: str, *, due_at: float) -> bool:
        """Look at an unfinished ticket again at ``due_at`` (a delivery found it held)."""
        return self._write(Claim(ticket, run), due_at=due_at)

    def release(self, ticket: str, run: str, *, due_at: float) -> bool:
        """Give up a delivery's lease (its worker lost Redis mid-way) and look again at
        ``due_at``; its in-doubt mark stays, so the next delivery reconciles first."""
        return self._write(Claim(ticket, run), lease_until=0, due_at=due_at)

    def postpone(self, claim: Claim, *, due_at: float) -> bool:
        """Release the hold without an attempt; the ticket waits in the delayed set."""
        # Back to what it was: a ticket that has been tried stays "retrying" while it waits.
        state = TicketState.QUEUED if claim.prior is TicketState.QUEUED else TicketState.RETRYING
        return self._write(claim, due_at=due_at, state=state.value, lease_until=0)

    def start_attempt(
        self, claim: Claim, *, lease_s: float, replicas: int = 0, wait_s: float = 1.0
    ) -> bool:
        """Count an attempt and mark the ticket in doubt *before* the create call is sent.

        With ``replicas`` > 0 the mark must also reach that many replicas within ``wait_s``
        (Redis ``WAIT``, on the connection that wrote it), so that a failover cannot lose it.

        Returns:
            False when the ticket was lost to another delivery.

        Raises:
            NotReplicated: the mark was written but fewer replicas acknowledged it.
        """
        lease_until = self._clock() + lease_s
        if replicas <= 0:
            return self._write(claim, attempts=1, in_doubt=1, lease_until=lease_until)
        pipe = self.redis.pipeline(transaction=False)
        self._write(claim, attempts=1, in_doubt=1, lease_until=lease_until, client=pipe)
        pipe.execute_command("WAIT", replicas, max(1, int(wait_s * 1000)))  # type: ignore[no-untyped-call]
        done, acked = pipe.execute()
        if done is None:
            return False
        if int(acked) < replicas:
            raise NotReplicated(int(acked), replicas)
        return True

    def connected_replicas(self) -> int:
        """How many replicas the Redis this store writes to has right now."""
        info = self.redis.info("replication")
        return int(info.get("connected_slaves", 0))

    def renew(self, claim: Claim, *, lease_s: float) -> bool:
        """Extend the hold before another API call (the list call of a reconciliation)."""
        return self._write(claim, lease_until=self._clock() + lease_s)

    def retrying(
        self,
        claim: Claim,
        error: ErrorPayload,
        *,
        in_doubt: bool,
        due_at: float,
        refund_attempt: bool = False,
        note: Attempt | None = None,
    ) -> bool:
        """Record a failed attempt, release the hold and wait in the delayed set until ``due_at``.

        ``refund_attempt`` gives back the attempt counted by :meth:`start_attempt` (a throttled
        call costs no attempt).
        """
        return self._write(
            claim,
            attempts=-1 if refund_attempt else 0,
            due_at=due_at,
            note=note,
            state=TicketState.RETRYING.value,
            error=error.model_dump_json(),
            in_doubt=int(in_doubt),
            lease_until=0,
        )

    def succeed(
        self,
        claim: Claim,
        job_id: str | None,
        *,
        reconciled: bool,
        note: Attempt | None = None,
        found: dict[str, Any] | None = None,
    ) -> bool:
        """Record success; the result expires after ``result_ttl_s``.

        A reconciled success (``job_id`` None) keeps the list row it was found with and says
        why it has no job id.
        """
        return self._write(
            claim,
            ttl_s=self._ttl_s,
            note=note,
            state=TicketState.SUCCEEDED.value,
            job_id=job_id or "",
            job_id_reason="" if job_id else NO_JOB_ID_REASON,
            found=json.dumps(found, separators=(",", ":")) if found else "",
            error="",
            in_doubt=0,
            reconciled=int(reconciled),
            lease_until=0,
        )

    def fail(
        self,
        claim: Claim,
        error: ErrorPayload,
        *,
        in_doubt: bool | None = None,
        note: Attempt | None = None,
    ) -> bool:
        """Record failure with its payload; the result expires after ``result_ttl_s``.

        ``in_doubt=False`` records that the API's answer proved nothing was created (None
        leaves the flag as it is), so a re-drive can skip the reconciliation.
        """
        doubt: dict[str, Any] = {} if in_doubt is None else {"in_doubt": int(in_doubt)}
        return self._write(
            claim,
            ttl_s=self._ttl_s,
            failed=True,
            note=note,
            state=TicketState.FAILED.value,
            error=error.model_dump_json(),
            lease_until=0,
            **doubt,
        )
