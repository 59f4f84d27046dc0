"""One delivery of one ticket, as a plain function of its collaborators (no Celery here).

The order of steps is what keeps a task from being created twice:

1. validate the message again (it is untrusted input, like any other), and check that it is
   the request its ticket recorded;
2. claim the ticket: a stale run, a finished ticket or a live holder means do nothing;
3. if an earlier attempt may have created the task (``in_doubt``), ask the list call first;
4. mark the ticket in doubt, *then* POST; only an answer proving nothing was created clears it;
5. a refusal that may only say our own task exists ("name exists", or any refusal after an
   earlier attempt) is checked with the list call before the ticket may fail;
6. a task that exists is enrolled for following *before* its ticket succeeds (or in the same
   atomic step).

On Redis the common path is two scripts (:meth:`LeaseStore.start`, :meth:`LeaseStore.finish`):
the claim, the gate (a token, the breaker), the in-doubt mark (and ``WAIT`` for replicas,
after the mark and before the POST) in one; the success, the breaker's record and the
enrolment in the other. A ticket in doubt is only claimed by the first, and looks before its
mark; a wait of the gate marks nothing and costs no attempt.

A configured request (one carrying a selection) takes the same start, then its two phases
(configure, read back, start: :mod:`htap_sync.worker.configured`), with these same steps.

A ticket that must wait goes to the durable delayed set (never a broker countdown), and its
message is acknowledged. It fails when its attempts or its deadline run out; when it is in
doubt by then, one more delivery looks first, so a task that exists is never reported failed.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from htap_sync.common.errors import Ambiguous, ApiError, Permanent, Rejected, Throttled
from htap_sync.common.lease import Claim, FinishCall, LeaseStore, Limits, Started
from htap_sync.common.models import ErrorPayload, ReplicationRequest
from htap_sync.common.settings import Settings
from htap_sync.worker import metrics
from htap_sync.worker.backoff import backoff_s
from htap_sync.worker.classify import says_name_exists
from htap_sync.worker.client import TaskRow, TaurusClient
from htap_sync.worker.delivery import (
    Delivery,
    Enroll,
    check_and_start,
    follow_created,
    marked,
    no_enroll,
    start_attempt_or_wait,
)
from htap_sync.worker.gate import OPEN_GATE, Api, CallGate, MustWait
from htap_sync.worker.lane_gate import pass_gate, wait_first
from htap_sync.worker.outcome import Outcome, finished, note, observed
from htap_sync.worker.record import record_created

__all__ = [
    "Delivery",
    "Enroll",
    "Outcome",
    "carry_on",
    "create_failed",
    "process_ticket",
    "record_created",
]

log = logging.getLogger("htap_sync.worker")
T = TypeVar("T")
L = TypeVar("L")  # what a look before the attempt may find besides an end


def process_ticket(
    ticket: str,
    run: str,
    payload: Any,
    *,
    client: TaurusClient,
    store: LeaseStore,
    settings: Settings,
    rng: random.Random,
    gate: CallGate | None = None,
    clock: Callable[[], float] = time.time,
    enroll: Enroll | None = None,
    replicas: Callable[[], int] = lambda: 0,
) -> Outcome:
    """Carry one delivery of a ticket's message as far as it goes.

    ``gate`` (the fleet's rate limit and breaker) is passed before every API call; None lets
    every call through (tests of the rest of the logic). ``enroll`` starts following a task
    that exists (None: following is off). ``replicas``: how many Redis replicas must hold
    the in-doubt mark before the create call goes out.
    """
    gate = gate or OPEN_GATE
    d = Delivery(client, store, settings, rng, gate, clock, enroll or no_enroll, replicas)
    checked = check_and_start(ticket, run, payload, d)
    if isinstance(checked, Outcome):
        return checked
    return carry_on(*checked, d)


def carry_on(
    request: ReplicationRequest, started: Started, limits: Limits | None, d: Delivery
) -> Outcome:
    """A delivery from its start (:func:`check_and_start`) to its end: the create call when
    the start marked it (else the start's rarer paths first), then its outcome recorded."""
    if request.configured:
        # Two phases (worker/configured.py, which uses this module's steps): imported here.
        from htap_sync.worker.configured import carry_on_configured

        return carry_on_configured(request, started, limits, d)
    claim = started.claim
    # Marked by start: finish tells the breaker; else the gate heard the call (after_call).
    told_by_finish = limits if started.verdict == "marked" else None
    sent = False
    try:
        if started.verdict == "marked":
            ready = marked(started, d, limits)
        else:
            ready = step_by_step(request, started, d, limits, look=_reconcile, api="create")
        if isinstance(ready, Outcome):
            return ready
        if not ready:
            return Outcome("skipped", reason="lost the ticket")
        sent = True
        created = observed(
            claim,
            "create",
            lambda: d.client.create_replication(request),
            d.gate,
            request.project_id,
            report_ok=told_by_finish is None,
        )
    except MustWait as wait:
        return wait_later(claim, wait, d)
    except ApiError as exc:
        return create_failed(request, claim, exc, d, sent=sent)
    follow = follow_created(d.enroll, claim.ticket, request, created.job_id)
    made = note("create", "created", request_id=created.request_id)
    call = FinishCall(claim, created.job_id, made, told_by_finish, follow)
    if not record_created([call], d, many=False)[0]:
        return Outcome("skipped", reason="lost the ticket")
    finished(claim, "succeeded", d.clock)
    return Outcome("finished", reason="created")


def create_failed(
    request: ReplicationRequest, claim: Claim, exc: ApiError, d: Delivery, *, sent: bool
) -> Outcome:
    """After a failed API call of the delivery (``sent``: the create call went out): look
    when the refusal may be our own task's, else retry or fail."""
    if sent and _may_be_ours(exc, claim):
        return _refused_but_maybe_ours(request, claim, exc, d)
    return after_error(exc, claim, sent=sent, d=d)


def step_by_step(
    request: ReplicationRequest,
    started: Started,
    d: Delivery,
    limits: Limits | None,
    *,
    look: Callable[[ReplicationRequest, Claim, Delivery], Outcome | L | None],
    api: Api,
) -> bool | Outcome | L:
    """The start's rarer paths: a gate's wait, a look first when in doubt (``look``: a plain
    request's reconciliation, or a configured one's), then the gate of ``api`` and the attempt
    one step at a time.

    Raises:
        MustWait: the gate's answer at the start was a wait (nothing marked, no attempt), or a
            dead holder's lease to wait out.
    """
    claim = started.claim
    wait_first(started, limits, request, d.settings)
    if claim.in_doubt:
        looked = look(request, claim, d)
        if looked is None and claim.not_before > d.clock():
            # Taken over from a dead holder whose last call may still be on its way: absent
            # now proves nothing until its lease ends; look again then.
            raise MustWait(claim.not_before - d.clock(), "lease")
        found = looked if looked is not None else exhausted_in_doubt(claim, d)
        if found is not None:
            return found
    pass_gate(request, d.gate, limits, api, d.settings)  # sleeps for a short wait
    return start_attempt_or_wait(claim, d)


def exhausted_in_doubt(claim: Claim, d: Delivery) -> Outcome | None:
    """After a look that found nothing: fail a ticket whose budget is spent, else None."""
    if not out_of_budget(claim, d.settings, d.clock):
        return None
    d.store.fail(
        claim,
        ErrorPayload(
            error_code="HTAP_SYNC.EXHAUSTED",
            error_msg=f"gave up after {claim.attempts} attempts and"
            f" {_age_s(claim, d.clock):.0f} s; the task does not exist",
        ),
        in_doubt=False,
        note=note("list", "absent"),
    )
    finished(claim, "failed", d.clock)
    return Outcome("finished", reason="budget exhausted")


def wait_later(claim: Claim, wait: MustWait, d: Delivery) -> Outcome:
    """Put the ticket back in the delayed set for a wait that costs no attempt."""
    d.store.postpone(claim, due_at=d.clock() + wait.wait_s)
    metrics.WAITS.labels(wait.reason).inc()
    log.info(
        "ticket %s: waits %.2f s (%s)",
        claim.ticket,
        wait.wait_s,
        wait.reason,
        extra={"ticket": claim.ticket, "wait_reason": wait.reason, "delay_s": wait.wait_s},
    )
    return Outcome("waiting", delay_s=wait.wait_s, reason=wait.reason)


def _may_be_ours(exc: ApiError, claim: Claim) -> bool:
    """A refused create that may only say our own task exists: look before failing.

    That is a "name exists" answer (whatever its status code), or any refusal after an
    earlier attempt that may have created the task (its in-doubt mark may have been lost).
    """
    if not isinstance(exc, Rejected):
        return False
    return says_name_exists(exc) or claim.in_doubt or claim.attempts > 0


def _refused_but_maybe_ours(
    request: ReplicationRequest, claim: Claim, exc: ApiError, d: Delivery
) -> Outcome:
    """Reconcile by list now: our task found means success; absent, the refusal stands.

    Except for "name exists" after an earlier attempt: then the task is ours whatever the list
    says this instant, and the ticket retries in doubt.
    """
    try:
        looked = _reconcile(request, claim, d)
    except MustWait as wait:
        # The create was sent: keep the doubt so the next delivery looks first.
        return after_error(exc, claim, sent=True, d=d, keep_doubt=True, delay_s=wait.wait_s)
    except ApiError as list_error:
        log.info("ticket %s: list call failed after a refusal: %s", claim.ticket, list_error)
        return after_error(exc, claim, sent=True, d=d, keep_doubt=True)
    if looked is not None:
        return looked
    if says_name_exists(exc) and (claim.in_doubt or claim.attempts > 0):
        # Our earlier attempt's task, not listed yet (or its in-doubt mark was lost): never a
        # failure; the next delivery looks again, and the budget bounds the looking.
        return after_error(exc, claim, sent=True, d=d, keep_doubt=True)
    payload = ErrorPayload.model_validate(exc.payload())
    d.store.fail(claim, payload, in_doubt=False, note=note("create", "error", exc))
    finished(claim, "failed", d.clock)
    return Outcome("finished", reason=type(exc).__name__)


def _reconcile(request: ReplicationRequest, claim: Claim, d: Delivery) -> Outcome | None:
    """Ask the list call whether an earlier attempt created the task; None: it did not.

    A task of the ticket's name and databases that an attempt of this ticket may have made
    (in doubt, or tried before) is this ticket's whatever its stage: a Cancelled one too (it
    was created, then failed to sync: following says so, with the reason). Creating it again
    is the user's explicit re-drive, never automatic. Each page of the list pays its token.
    """
    existing = find_ours(request, claim, d)
    return None if existing is None else settle_found(request, claim, existing, d)


def find_ours(request: ReplicationRequest, claim: Claim, d: Delivery) -> TaskRow | None:
    """The list call's row of the ticket's task name (None, counted: absent), through the
    gate, each page paying its token, the claim renewed first. A Cancelled row counts when an
    attempt of this ticket may have made it (in doubt, or tried before)."""
    d.gate.before_call(request.project_id, "list")
    d.store.renew(claim, lease_s=d.settings.lease_s)
    existing = observed(
        claim,
        "list",
        lambda: d.client.find_replication(
            request,
            include_cancelled=claim.in_doubt or claim.attempts > 0,
            before_page=lambda: d.gate.before_call(request.project_id, "list"),
        ),
        d.gate,
        request.project_id,
    )
    if existing is None:
        metrics.RECONCILIATIONS.labels("absent").inc()
    return existing


def settle_found(
    request: ReplicationRequest, claim: Claim, existing: TaskRow, d: Delivery
) -> Outcome:
    """A task of the ticket's name was listed: ours (its databases) succeeds the ticket,
    reconciled and followed; another's fails it (the name is taken)."""
    if existing.matches(request):
        d.enroll(claim.ticket, request, None)
        found = note("list", "found")
        d.store.succeed(claim, None, reconciled=True, note=found, found=existing.raw)
        metrics.RECONCILIATIONS.labels("found").inc()
        finished(claim, "succeeded", d.clock)
        return Outcome("finished", reason="reconciled")
    metrics.RECONCILIATIONS.labels("name_taken").inc()
    d.store.fail(
        claim,
        ErrorPayload(
            error_code="HTAP_SYNC.NAME_TAKEN",
            error_msg=f"a task named {request.task_name} already exists on the instance"
            " with another database pair",
        ),
        note=note("list", "found"),
    )
    finished(claim, "failed", d.clock)
    return Outcome("finished", reason="name taken")


def backoff_cap_s(exc: ApiError, settings: Settings) -> float:
    """The longest backoff after ``exc``. A server failure (5xx, a lost answer) waits at most
    the breaker's cooldown: sustained failures open the shared breaker, which holds the whole
    fleet off the endpoint, so a ticket's own wait beyond that would only outlast the fault.
    Other retries (409 in progress, transport errors) back off up to HTAP_SYNC_BACKOFF_MAX_S."""
    cap = settings.delivery.backoff_max_s
    if isinstance(exc, Ambiguous):
        return min(cap, settings.breaker.cooldown_s)
    return cap


def _age_s(claim: Claim, clock: Callable[[], float]) -> float:
    return clock() - claim.created_at.timestamp() if claim.created_at else 0.0


def out_of_budget(claim: Claim, settings: Settings, clock: Callable[[], float]) -> bool:
    return (
        claim.attempts >= settings.delivery.max_attempts
        or _age_s(claim, clock) >= settings.delivery.deadline_s
    )


def after_error(
    exc: ApiError,
    claim: Claim,
    *,
    sent: bool,
    d: Delivery,
    keep_doubt: bool = False,
    delay_s: float | None = None,
    call: Api | None = None,
) -> Outcome:
    """Fail the ticket for good, or schedule its next attempt with backoff (or ``delay_s``).

    ``keep_doubt``: a refusal whose list check could not be made; the next delivery looks.
    ``call``: the API the error came from (default: the create call if ``sent``, else list).
    """
    settings = d.settings
    noted = note(call or ("create" if sent else "list"), "error", exc)
    payload = ErrorPayload.model_validate(exc.payload())
    if isinstance(exc, Permanent) and not keep_doubt:
        # A refusal of our create proves it created nothing; one of the list call proves less.
        d.store.fail(claim, payload, in_doubt=False if sent else None, note=noted)
        finished(claim, "failed", d.clock)
        return Outcome("finished", reason=type(exc).__name__)
    # Waiting out the gateway's throttling costs no attempt.
    refund = sent and isinstance(exc, Throttled)
    attempts = claim.attempts + int(sent) - int(refund)
    in_doubt = claim.in_doubt or keep_doubt or (sent and isinstance(exc, Ambiguous))
    spent = (
        attempts >= settings.delivery.max_attempts
        or _age_s(claim, d.clock) >= settings.delivery.deadline_s
    )
    if spent and not in_doubt:
        # Not in doubt here means the answers proved nothing was created: record it, or a
        # re-drive would reconcile for nothing.
        d.store.fail(claim, payload, in_doubt=False, note=noted)
        finished(claim, "failed", d.clock)
        return Outcome("finished", reason="budget exhausted")
    delay = delay_s
    if delay is None:
        delay = backoff_s(
            max(attempts, 1),
            base_s=settings.delivery.backoff_base_s,
            max_s=backoff_cap_s(exc, settings),
            rng=d.rng,
            retry_after_s=exc.retry_after_s,
        )
    d.store.retrying(
        claim,
        payload,
        in_doubt=in_doubt,
        due_at=d.clock() + delay,
        refund_attempt=refund,
        note=noted,
    )
    metrics.RETRIES.labels(type(exc).__name__).inc()
    return Outcome("retry", delay_s=delay, reason=type(exc).__name__)
