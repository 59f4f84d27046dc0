"""Tickets in this process, kept as the Redis store keeps them: submit and read, no Redis.

Each ticket is the same field/value hash as in Redis (read by the same
:func:`~htap_sync.common.tickets.store.status_of`), with its bounded history, the failed index
and the wake-ups of the delayed set beside it. Expiry follows the store's injected clock, so a test
can let a result expire without waiting. One lock makes every change atomic, as a Lua script
is in Redis. The claim protocol on top is
:class:`~htap_sync.common.tickets.claims_memory.MemoryClaimStore`.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable

from htap_sync.common.errors import TicketConflict, TicketNotFound
from htap_sync.common.models import (
    OperationRequest,
    ReplicationRequest,
    TicketState,
    TicketStatus,
)
from htap_sync.common.tickets.ids import operation_ticket
from htap_sync.common.tickets.store import Submitted, iso, status_of


def as_text(value: object) -> str:
    """A field value as Redis would keep it (redis-py sends numbers as their ``repr``).

    Raises:
        TypeError: a value redis-py would refuse (a bool, or anything but text and numbers).
    """
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value)
    raise TypeError(f"a ticket field cannot hold {type(value).__name__}")


class MemoryTicketStore:
    """Tickets of one process (tests, the worker's unit tier). Thread-safe.

    Args:
        result_ttl_s: how long finished tickets stay readable, on ``clock``.
        watch_s: how long past its lease (or its submission) an unfinished ticket may go
            without news before its watchdog wake-up falls due.
        clock: seconds since the epoch; injected in tests.
    """

    def __init__(
        self, *, result_ttl_s: int, watch_s: float = 300.0, clock: Callable[[], float] = time.time
    ) -> None:
        self._ttl_s = result_ttl_s
        self._watch_s = watch_s
        self._clock = clock
        self._lock = threading.RLock()  # the lease store's start holds it over several steps
        self._hashes: dict[str, dict[str, str]] = {}
        self._history: dict[str, list[str]] = {}
        self._expires: dict[str, float] = {}  # finished tickets: when hash and history go
        self._failed: dict[str, float] = {}  # the failed index: ticket -> when it failed
        self._delayed: dict[str, float] = {}  # wake-ups: "ticket:run" -> when due
        self._beats: dict[str, float] = {}  # worker processes: node -> alive until
        self._list_epochs: dict[str, int] = {}  # instance -> its last shared list call's number
        # The lease store's shared list snapshots: instance -> (lister's token, held until),
        # and instance -> (number, task name -> row JSON, kept until).
        self._listers: dict[str, tuple[str, float]] = {}
        self._snapshots: dict[str, tuple[int, dict[str, str], float]] = {}

    def _live(self, ticket: str) -> dict[str, str] | None:
        """The ticket's hash, None when unknown or expired (call with the lock held)."""
        expires = self._expires.get(ticket)
        if expires is not None and self._clock() >= expires:
            for kept in (self._hashes, self._history, self._expires):
                kept.pop(ticket, None)
        return self._hashes.get(ticket)

    def submit(
        self, request: ReplicationRequest, *, run: str | None = None
    ) -> tuple[str, str, Submitted]:
        """Record a request as queued, unless its ticket is taken (as ``TicketStore.submit``,
        with no broker message: nothing is queued).

        Raises:
            TicketConflict: a different request holds the name and has not failed.
        """
        run = run or uuid.uuid4().hex
        ticket = request.ticket
        with self._lock:
            outcome, state = self._submit(ticket, request.fingerprint(), run, self._clock())
            if outcome in ("queued", "redriven"):
                self._hashes[ticket]["route"] = request.route()
        if outcome == "conflict":
            raise TicketConflict(ticket, state)
        return ticket, run, Submitted(outcome)

    def submit_operation(
        self, operation: OperationRequest, *, run: str | None = None
    ) -> tuple[str, str, str]:
        """Record an operation's ticket as queued (as ``TicketStore.submit_operation``, with
        no broker message): ``(ticket, outcome, state)``."""
        run = run or uuid.uuid4().hex
        ticket = operation_ticket(operation.project_id, operation.instance_id, operation.task_name)
        fingerprint = operation.fingerprint()
        with self._lock:
            found = self._live(ticket)
            state = found.get("state") if found else None
            same = found is not None and found.get("request") == fingerprint
            ended = state in (TicketState.FAILED, TicketState.SUCCEEDED)
            if state and not ended:
                return ticket, "duplicate" if same else "conflict", state
            if state == TicketState.SUCCEEDED and same and operation.operation == "modify":
                return ticket, "duplicate", state
            self._hashes.pop(ticket, None)  # replaced: a fresh run, no doubt (it looks first)
            self._submit(ticket, fingerprint, run, self._clock())
            ref = f"{operation.project_id}/{operation.instance_id}"
            self._hashes[ticket]["look_after"] = str(self._list_epochs.get(ref, 0))
        return ticket, "redriven" if state else "queued", TicketState.QUEUED.value

    def _submit(self, ticket: str, fingerprint: str, run: str, now: float) -> tuple[str, str]:
        found = self._live(ticket)
        state = found.get("state") if found else None
        if found and state and state != TicketState.FAILED:
            return ("duplicate" if found.get("request") == fingerprint else "conflict"), state
        # A re-driven ticket keeps its doubt: if a failed run may have created the task, look.
        in_doubt = found.get("in_doubt", "1") if found else "0"
        self._hashes[ticket] = {
            "request": fingerprint,
            "state": TicketState.QUEUED.value,
            "run": run,
            "attempts": "0",
            "in_doubt": in_doubt,
            "reconciled": "0",
            "lease_until": "0",
            "holder": "",
            "created_at": iso(now),
            "updated_at": iso(now),
        }
        self._expires.pop(ticket, None)  # the history is kept, and kept for good again
        self._failed.pop(ticket, None)
        self._delayed[f"{ticket}:{run}"] = now + self._watch_s
        return ("redriven" if found else "queued"), TicketState.QUEUED.value

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
        """Statuses of many tickets; None for unknown ones."""
        out: dict[str, TicketStatus | None] = {}
        with self._lock:
            for ticket in tickets:
                raw = self._live(ticket)
                history = list(self._history.get(ticket, []))
                out[ticket] = status_of(ticket, dict(raw), history) if raw else None
        return out

    def failed(self, *, limit: int = 1000) -> list[TicketStatus]:
        """Failed tickets, most recent failure first (expired ones are dropped from the index)."""
        with self._lock:
            cutoff = self._clock() - self._ttl_s
            self._failed = {t: at for t, at in self._failed.items() if at > cutoff}
            newest = sorted(self._failed.items(), key=lambda item: (item[1], item[0]))
            tickets = [ticket for ticket, _ in reversed(newest)][:limit]
        found = self.get_many(tickets)
        return [s for s in found.values() if s is not None and s.state is TicketState.FAILED]

    def due_at(self, ticket: str, run: str) -> float | None:
        """When the ticket's run is next looked at (its retry, or its watchdog), on the store's
        clock; None when nothing is scheduled (finished, or another run)."""
        with self._lock:
            return self._delayed.get(f"{ticket}:{run}")
