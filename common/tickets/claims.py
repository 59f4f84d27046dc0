"""The worker's side of the ticket store: the lease protocol, the same on every backend.

A delivery *claims* a ticket (``begin``), marks it in doubt before each create call
(``start_attempt``, optionally ``WAIT``-ing for replicas), and ends with ``succeed``, ``fail``,
``retrying`` (to the delayed set) or ``postpone``. The common path takes two steps:
``start`` claims, passes the gate's :class:`Limits` (rate limit, breaker) and marks the
attempt, and ``finish`` records the created task and tells the breaker. A delivery that finds
the ticket held looks again later (``defer``), and one that lost Redis gives its lease up
(``release``). Every write names the run and the holder, and a finished ticket is never
written again: a late writer never undoes a result. See :mod:`htap_sync.common.tickets.store` for
the ticket's fields.

:class:`ClaimStore` says what each write records; keeping each claim and write atomic is its
backend's: :class:`~htap_sync.common.tickets.claims_redis.RedisClaimStore` (Lua scripts,
shared by the fleet) and :class:`~htap_sync.common.tickets.claims_memory.MemoryClaimStore`
(one process: the fast
tier of the worker's tests). One contract test runs both.
"""

from __future__ import annotations

import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from htap_sync.common.models import Attempt, ErrorPayload, TicketState, TicketStatus
from htap_sync.common.sync_info import NO_JOB_ID_REASON
from htap_sync.common.tickets.claim_types import (
    Admission,
    Claim,
    FinishCall,
    Following,
    Limits,
    Listed,
    NotReplicated,
    ScriptedLimits,
    StartCall,
    Started,
)

__all__ = [
    "Admission",
    "Claim",
    "ClaimStore",
    "FinishCall",
    "Following",
    "Limits",
    "Listed",
    "NotReplicated",
    "ScriptedLimits",
    "StartCall",
    "Started",
    "succeeded_fields",
]


class ClaimStore(ABC):
    """The worker's ticket store: claims, attempts and results of deliveries.

    A backend keeps ``_clock`` (seconds since the epoch) and ``_ttl_s`` (how long finished
    tickets stay readable), and implements the abstract methods; every write below is one
    :meth:`_write`.
    """

    _clock: Callable[[], float]
    _ttl_s: int
    # The worker process this store's claims name (see ``lease_types.ALIVE_TTL_S``); None:
    # holders name no process, and only their lease says when they are gone.
    node: str | None = None

    def new_holder(self) -> str:
        """A new claim's holder: ``<node>.<id>`` (or ``<id>`` without a node)."""
        own = uuid.uuid4().hex
        return f"{self.node}.{own}" if self.node else own

    @abstractmethod
    def beat(self, node: str, ttl_s: float) -> None:
        """Say that the worker process ``node`` lives for ``ttl_s`` more seconds."""

    @abstractmethod
    def begin(self, ticket: str, run: str, *, lease_s: float) -> Claim | str:
        """Take the ticket for one delivery of its message.

        Moves its watchdog to "now + ``PROBE_S``", when the mover looks whether the claim's
        process still lives. A ticket held by a live delivery is busy; one whose holder's
        process stopped beating is taken over at once (``Claim.dead_lease_until``).

        Returns:
            a :class:`Claim`, or why the delivery must do nothing: ``"missing"``, ``"stale"``
            (another run), ``"done"`` (finished), ``"busy"`` (a live delivery holds it).
        """

    @abstractmethod
    def pending_request(self, ticket: str, run: str) -> tuple[str, dict[str, Any]] | None:
        """``(state, request)`` of an unfinished ticket of ``run``, else None (stale, done,
        expired). ``state`` is ``"held"`` while a live delivery holds it (its lease runs and
        its process beats), ``"waiting"`` for a queued ticket that waited on purpose
        (:meth:`postpone`), else the ticket's state."""

    @abstractmethod
    def get(self, ticket: str) -> TicketStatus:
        """The ticket's status.

        Raises:
            TicketNotFound: unknown ticket, or a finished one whose result expired.
        """

    @abstractmethod
    def connected_replicas(self) -> int:
        """How many replicas the store writes to right now (0 for one without replicas)."""

    @abstractmethod
    def _write(
        self,
        claim: Claim,
        *,
        attempts: int = 0,
        ttl_s: int = 0,
        failed: bool = False,
        due_at: float | None = None,
        note: Attempt | None = None,
        **fields: Any,
    ) -> bool:
        """Apply one write of ``claim``'s delivery, atomically, unless it is refused.

        Refused (False): another run, a finished ticket, or (``claim.holder`` set) a lease
        taken over. Otherwise: add ``attempts`` to the count, set ``fields`` and
        ``updated_at``, append ``note`` to the bounded history, expire the ticket after
        ``ttl_s`` (> 0: finished, its wake-up removed), index it as failed, and schedule its
        next wake-up at ``due_at``.
        """

    @abstractmethod
    def _write_replicated(
        self, claim: Claim, *, replicas: int, wait_s: float, **fields: Any
    ) -> bool:
        """:meth:`_write` with one attempt more, then wait up to ``wait_s`` for ``replicas``
        to hold it.

        Raises:
            NotReplicated: written, but fewer replicas acknowledged it.
        """

    # Shared list snapshots of operation tickets (worker/delivery/shared_look.py): per instance
    # (``ref``: ``project_id/instance_id``), a counter numbers each list call before it is
    # sent, and the last call's rows are kept with its number.

    @abstractmethod
    def list_epoch(self, ref: str) -> int:
        """The number the instance's last shared list call took (0: none yet)."""

    @abstractmethod
    def claim_list(self, ref: str, *, hold_s: float) -> tuple[int, str] | None:
        """Become the instance's lister for ``hold_s`` at most: ``(number, token)``, the
        number taken now, before the call is sent; None while another lister holds it."""

    @abstractmethod
    def record_list(
        self, ref: str, epoch: int, token: str, rows: Mapping[str, str], *, ttl_s: float
    ) -> bool:
        """Keep ``rows`` (task name -> row JSON) of list call ``epoch`` as the instance's
        snapshot for ``ttl_s``, unless a later call's are kept already (False); release the
        lister's claim ``token``."""

    @abstractmethod
    def release_list(self, ref: str, token: str) -> None:
        """Give up the lister's claim ``token`` (its call kept nothing), if still held."""

    @abstractmethod
    def listed(self, ref: str, task_name: str, *, after: int) -> Listed | None:
        """The task's row in the instance's snapshot, if that snapshot's call took a number
        above ``after`` (None: no snapshot that fresh)."""

    @abstractmethod
    def look_after(self, ticket: str) -> int:
        """The ticket's ``look_after``: its next look may only use a list call numbered above
        it (0 when unset)."""

    def defer(self, ticket: str, run: str, *, due_at: float) -> bool:
        """Look at an unfinished ticket again at ``due_at`` (a delivery found it held)."""
        return self._write(Claim(ticket, run), due_at=due_at)

    def release(self, ticket: str, run: str, *, due_at: float) -> bool:
        """Give up a delivery's lease (its worker lost Redis mid-way) and look again at
        ``due_at``; its in-doubt mark stays, so the next delivery reconciles first."""
        return self._write(Claim(ticket, run), lease_until=0, due_at=due_at)

    def postpone(self, claim: Claim, *, due_at: float, look_after: int | None = None) -> bool:
        """Release the hold without an attempt; the ticket waits in the delayed set.

        ``look_after``: the number of the list call its look just used (its next look needs a
        later one; None: unchanged)."""
        # Back to what it was: a ticket that has been tried stays "retrying" while it waits.
        state = TicketState.QUEUED if claim.prior is TicketState.QUEUED else TicketState.RETRYING
        # ``waiting``: when due, the mover sends it at once (a queued ticket without it is a
        # watchdog's wake-up, whose message may still be in the queue).
        more: dict[str, Any] = {} if look_after is None else {"look_after": look_after}
        return self._write(
            claim, due_at=due_at, state=state.value, lease_until=0, waiting=1, **more
        )

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
        return self._write_replicated(
            claim, replicas=replicas, wait_s=wait_s, in_doubt=1, lease_until=lease_until
        )

    def start(
        self, call: StartCall, *, lease_s: float, replicas: int = 0, wait_s: float = 1.0
    ) -> Started | str:
        """Claim the ticket, pass the gate and mark the attempt: one step on the common path.

        Claims ``call``'s ticket as :meth:`begin` does (its reasons to do nothing come back as
        they are). A claim in doubt, whose request is not ``call.fingerprint``, or without
        ``call.limits`` (a gate the store cannot ask) stops there (``claimed``): the delivery
        goes on step by step. Otherwise
        ``limits`` are asked: a wait sends nothing, marks nothing and costs no attempt. Then
        the attempt is counted and the ticket marked in doubt as by :meth:`start_attempt`;
        too few ``replicas`` within ``wait_s`` is ``Started.unreplicated`` (the mark written).
        A backend keeps it atomic where it can (Redis: ``start.lua``, with ``WAIT`` after it);
        this generic version takes the steps one by one, each refused to a lost claim.
        """
        claim = self.begin(call.ticket, call.run, lease_s=lease_s)
        if not isinstance(claim, Claim):
            return claim
        limits = call.limits
        if limits is None or claim.in_doubt or claim.fingerprint != call.fingerprint:
            return Started(claim, "claimed")
        admission = Admission() if limits.free else limits.admit()
        if admission.reason:
            return Started(claim, admission.reason, admission.wait_s)
        try:
            marked = self.start_attempt(claim, lease_s=lease_s, replicas=replicas, wait_s=wait_s)
        except NotReplicated as exc:
            return Started(claim, "marked", admission.sleep_s, exc)
        return Started(claim, "marked", admission.sleep_s) if marked else "busy"

    def finish(self, call: FinishCall, *, replicas: int = 0, wait_s: float = 1.0) -> bool:
        """Record the task a create call made (as :meth:`succeed`), tell the breaker of
        ``call.limits`` that the call succeeded, and start following the task
        (``call.follow``, before or with the success, whatever becomes of the write): one step
        on Redis (``finish.lua``).

        With ``replicas`` > 0 the write must also reach that many replicas within ``wait_s``.

        Raises:
            NotReplicated: written here, but fewer replicas acknowledged it (a failover may
                lose it: write it again, see ``worker.process.record_created``).
        """
        if call.follow is not None:
            call.follow.enroll()
        if call.limits is not None and not call.limits.free:
            call.limits.succeeded()
        done = self.succeed(call.claim, call.job_id, reconciled=False, note=call.note)
        self._check_replicas(replicas)
        return done

    def start_many(
        self, calls: Sequence[StartCall], *, lease_s: float, replicas: int = 0, wait_s: float = 1.0
    ) -> list[Started | str]:
        """:meth:`start` for each ticket of a batch, in order, each as if alone (one step for
        them all on Redis, ``start_many.lua``, with one ``WAIT`` after it)."""
        return [self.start(c, lease_s=lease_s, replicas=replicas, wait_s=wait_s) for c in calls]

    def finish_many(
        self, calls: Sequence[FinishCall], *, replicas: int = 0, wait_s: float = 1.0
    ) -> list[bool]:
        """:meth:`finish` for each ticket of a batch, in order (one step for them all on
        Redis, ``finish_many.lua``, with one ``WAIT`` after it)."""
        done = [self.finish(call) for call in calls]
        self._check_replicas(replicas)
        return done

    def _check_replicas(self, replicas: int) -> None:
        """After a write that must reach ``replicas``: a store that cannot wait for them
        counts those it has (NotReplicated when too few)."""
        if replicas > 0 and (have := self.connected_replicas()) < replicas:
            raise NotReplicated(have, replicas)

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

    def operation_sent(
        self,
        claim: Claim,
        job_id: str,
        *,
        due_at: float,
        note: Attempt | None = None,
        look_after: int = 0,
    ) -> bool:
        """An operation's call was accepted with its job ``job_id``: the ticket stays running
        and in doubt (sent: the next delivery looks before sending again), keeps the job, and
        waits until ``due_at`` to look whether the operation is done, with a list call
        numbered above ``look_after`` (read after the answer came)."""
        return self._write(
            claim,
            due_at=due_at,
            note=note,
            state=TicketState.RUNNING.value,
            job_id=job_id,
            in_doubt=1,
            lease_until=0,
            look_after=look_after,
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
        fields = succeeded_fields(job_id, reconciled=reconciled, found=found)
        return self._write(claim, ttl_s=self._ttl_s, note=note, **fields)

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


def succeeded_fields(
    job_id: str | None, *, reconciled: bool, found: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The fields a success writes (see :meth:`ClaimStore.succeed`)."""
    return {
        "state": TicketState.SUCCEEDED.value,
        "job_id": job_id or "",
        "job_id_reason": "" if job_id else NO_JOB_ID_REASON,
        "found": json.dumps(found, separators=(",", ":")) if found else "",
        "error": "",
        "in_doubt": 0,
        "reconciled": int(reconciled),
        "lease_until": 0,
    }
