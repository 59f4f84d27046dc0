"""The ticket store in Redis: one hash per ticket, every state change atomic (Lua).

A ticket is written before its message is queued and read by callers polling for results. The
``run`` field names the current submission: a message that carries another run is stale and is
dropped, so a re-driven ticket can never be acted on by a leftover message. ``in_doubt`` is set
*before* every create call and cleared only by an answer proving nothing was created, so a worker
that dies mid-call leaves a ticket that the next delivery reconciles before posting again.
In-flight tickets never expire; finished ones expire after ``result_ttl_s``.
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

from common.errors import TicketConflict, TicketNotFound
from common.models import ErrorPayload, ReplicationRequest, TicketState, TicketStatus
from common.tickets import ticket_id

Clock = Callable[[], float]

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
  'attempts', 0, 'in_doubt', in_doubt, 'reconciled', 0, 'lease_until', 0,
  'created_at', ARGV[3], 'updated_at', ARGV[3])
if state then return {'redriven', 'queued'} end
return {'queued', 'queued'}
"""

_BEGIN = """
local h = redis.call('HMGET', KEYS[1], 'state', 'run', 'lease_until', 'in_doubt', 'attempts')
local state = h[1]
if not state then return {'missing', ''} end
if h[2] ~= ARGV[1] then return {'stale', state} end
if state == 'succeeded' or state == 'failed' then return {'done', state} end
if state == 'running' and tonumber(h[3]) > tonumber(ARGV[2]) then return {'busy', state} end
redis.call('HSET', KEYS[1], 'state', 'running', 'lease_until', ARGV[3], 'updated_at', ARGV[4])
return {'ok', h[4], h[5]}
"""

# ARGV: run, attempts increment, ttl (0: keep), then field/value pairs. Refuses stale runs and
# finished tickets, so a late writer can never undo a result.
_UPDATE = """
local h = redis.call('HMGET', KEYS[1], 'state', 'run')
if not h[1] or h[2] ~= ARGV[1] or h[1] == 'succeeded' or h[1] == 'failed' then return false end
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', tonumber(ARGV[2]))
local fields = {}
for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
if #fields > 0 then redis.call('HSET', KEYS[1], unpack(fields)) end
if tonumber(ARGV[3]) > 0 then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3])) end
return attempts
"""


class Submitted(StrEnum):
    """What a submission did: queued anew, found the same request, or re-drove a failure."""

    QUEUED = "queued"
    DUPLICATE = "duplicate"
    REDRIVEN = "redriven"


@dataclass(frozen=True)
class Claim:
    """A worker's hold on a ticket for one delivery."""

    ticket: str
    run: str
    in_doubt: bool
    attempts: int


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


class TicketStore:
    """Tickets in Redis under ``{key_prefix}:ticket:{id}``.

    Args:
        client: a redis-py client created with ``decode_responses=True``.
        key_prefix: namespace of every key (several deployments can share one Redis).
        result_ttl_s: how long finished tickets stay readable.
        clock: seconds since the epoch; injected in tests.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        key_prefix: str,
        result_ttl_s: int,
        clock: Clock = time.time,
    ) -> None:
        self._redis = client
        self._prefix = key_prefix
        self._ttl_s = result_ttl_s
        self._clock = clock
        self._submit = client.register_script(_SUBMIT)
        self._begin = client.register_script(_BEGIN)
        self._update = client.register_script(_UPDATE)

    def key(self, ticket: str) -> str:
        """The Redis key of a ticket."""
        return f"{self._prefix}:ticket:{ticket}"

    # -- producer side -------------------------------------------------------------------------

    def submit(self, request: ReplicationRequest) -> tuple[str, str, Submitted]:
        """Record a request as queued, unless its ticket is taken.

        Returns:
            ``(ticket, run, what)``; the caller queues a message only when ``what`` is not
            ``DUPLICATE``, carrying ``run``.

        Raises:
            TicketConflict: a different request holds the name and has not failed.
        """
        ticket = ticket_id(request.project_id, request.instance_id, request.task_name)
        run = uuid.uuid4().hex
        outcome, state = cast(
            list[str],
            self._submit(
                keys=[self.key(ticket)],
                args=[request.fingerprint(), run, _iso(self._clock())],
            ),
        )
        if outcome == "conflict":
            raise TicketConflict(ticket, state)
        return ticket, run, Submitted(outcome)

    def abandon(self, ticket: str, run: str, reason: str) -> None:
        """Fail a ticket whose message could not be queued, so nobody waits on it forever."""
        self.fail(
            ticket, run, ErrorPayload(error_code="HTAP_SYNC.ENQUEUE_FAILED", error_msg=reason)
        )

    def get(self, ticket: str) -> TicketStatus:
        """The ticket's status.

        Raises:
            TicketNotFound: unknown ticket, or a finished one whose result expired.
        """
        raw = cast(dict[str, str], self._redis.hgetall(self.key(ticket)))
        if not raw:
            raise TicketNotFound(ticket)
        return self._status(ticket, raw)

    def get_many(self, tickets: Iterable[str]) -> dict[str, TicketStatus | None]:
        """Statuses of many tickets in one round trip; None for unknown ones."""
        tickets = list(tickets)
        pipe = self._redis.pipeline(transaction=False)
        for ticket in tickets:
            pipe.hgetall(self.key(ticket))
        out: dict[str, TicketStatus | None] = {}
        for ticket, raw in zip(tickets, pipe.execute(), strict=True):
            out[ticket] = self._status(ticket, raw) if raw else None
        return out

    @staticmethod
    def _status(ticket: str, raw: dict[str, str]) -> TicketStatus:
        error = raw.get("error")
        return TicketStatus(
            ticket=ticket,
            state=TicketState(raw["state"]),
            job_id=raw.get("job_id") or None,
            error=ErrorPayload.model_validate_json(error) if error else None,
            attempts=int(raw.get("attempts", "0")),
            reconciled=raw.get("reconciled") == "1",
            request=ReplicationRequest.model_validate_json(raw["request"]),
            created_at=datetime.fromisoformat(raw["created_at"]),
            updated_at=datetime.fromisoformat(raw["updated_at"]),
        )

    # -- worker side ---------------------------------------------------------------------------

    def begin(self, ticket: str, run: str, *, lease_s: float) -> Claim | str:
        """Take the ticket for one delivery of its message.

        Returns:
            a :class:`Claim`, or why the delivery must do nothing: ``"missing"``, ``"stale"``
            (another run), ``"done"`` (finished), ``"busy"`` (a live worker holds it).
        """
        now = self._clock()
        result = cast(
            list[str],
            self._begin(keys=[self.key(ticket)], args=[run, now, now + lease_s, _iso(now)]),
        )
        if result[0] != "ok":
            return result[0]
        return Claim(ticket=ticket, run=run, in_doubt=result[1] == "1", attempts=int(result[2]))

    def _write(self, ticket: str, run: str, *, attempt: bool, ttl_s: int, **fields: Any) -> bool:
        fields["updated_at"] = _iso(self._clock())
        flat: list[Any] = []
        for name, value in fields.items():
            flat += [name, value]
        done = self._update(keys=[self.key(ticket)], args=[run, int(attempt), ttl_s, *flat])
        return done is not None

    def start_attempt(self, ticket: str, run: str, *, lease_s: float) -> bool:
        """Count an attempt and mark the ticket in doubt *before* the create call is sent."""
        return self._write(
            ticket, run, attempt=True, ttl_s=0, in_doubt=1, lease_until=self._clock() + lease_s
        )

    def renew(self, ticket: str, run: str, *, lease_s: float) -> bool:
        """Extend the hold before another API call (the list call of a reconciliation)."""
        return self._write(ticket, run, attempt=False, ttl_s=0, lease_until=self._clock() + lease_s)

    def retrying(self, ticket: str, run: str, error: ErrorPayload, *, in_doubt: bool) -> bool:
        """Record a failed attempt that will be tried again; release the hold."""
        return self._write(
            ticket,
            run,
            attempt=False,
            ttl_s=0,
            state=TicketState.RETRYING.value,
            error=error.model_dump_json(),
            in_doubt=int(in_doubt),
            lease_until=0,
        )

    def succeed(self, ticket: str, run: str, job_id: str | None, *, reconciled: bool) -> bool:
        """Record success; the result expires after ``result_ttl_s``."""
        return self._write(
            ticket,
            run,
            attempt=False,
            ttl_s=self._ttl_s,
            state=TicketState.SUCCEEDED.value,
            job_id=job_id or "",
            error="",
            in_doubt=0,
            reconciled=int(reconciled),
            lease_until=0,
        )

    def fail(
        self, ticket: str, run: str, error: ErrorPayload, *, in_doubt: bool | None = None
    ) -> bool:
        """Record failure with its payload; the result expires after ``result_ttl_s``.

        ``in_doubt=False`` records that the API's answer proved nothing was created (None
        leaves the flag as it is), so a re-drive can skip the reconciliation.
        """
        doubt = {} if in_doubt is None else {"in_doubt": int(in_doubt)}
        return self._write(
            ticket,
            run,
            attempt=False,
            ttl_s=self._ttl_s,
            state=TicketState.FAILED.value,
            error=error.model_dump_json(),
            lease_until=0,
            **doubt,
        )


def error_payload(exc: Exception) -> ErrorPayload:
    """The ticket's view of an exception: API errors keep their payload, others their text."""
    payload = getattr(exc, "payload", None)
    if callable(payload):
        return ErrorPayload.model_validate(payload())
    return ErrorPayload(error_code="HTAP_SYNC.INTERNAL", error_msg=f"{type(exc).__name__}: {exc}")


def to_json_line(status: TicketStatus, **extra: Any) -> str:
    """One status as a compact JSON line, with extra fields first (``line`` in bulk output)."""
    return json.dumps({**extra, **status.to_json()}, separators=(",", ":"))
