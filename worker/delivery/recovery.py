"""Recovery: what a delivery does when an answer leaves doubt, a refusal may be our own
task's, or the budget is spent. Nothing is created twice: the list call looks first
(:func:`find_ours`); a task of ours found is a success (reconciled); a refusal fails the ticket
only once the list proves the task is not ours. The happy path that branches here is
:mod:`htap_sync.worker.delivery.ticket`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from htap_sync.common.errors import Ambiguous, ApiError, Permanent, Rejected, Throttled
from htap_sync.common.limits.gate import Api, MustWait
from htap_sync.common.models import ErrorPayload, ReplicationRequest
from htap_sync.common.settings import Settings
from htap_sync.common.tickets.claims import Claim
from htap_sync.worker import metrics
from htap_sync.worker.api.classify import says_name_exists
from htap_sync.worker.api.client import TaskRow
from htap_sync.worker.delivery.backoff import backoff_s
from htap_sync.worker.delivery.settle import Outcome, finished, note, observed
from htap_sync.worker.delivery.start import Delivery

log = logging.getLogger("htap_sync.worker")


def create_failed(
    request: ReplicationRequest, claim: Claim, exc: ApiError, d: Delivery, *, sent: bool
) -> Outcome:
    """After a failed API call of the delivery (``sent``: the create call went out): look
    when the refusal may be our own task's, else retry or fail."""
    if sent and _may_be_ours(exc, claim):
        return _refused_but_maybe_ours(request, claim, exc, d)
    return after_error(exc, claim, sent=sent, d=d)


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
        looked = reconcile(request, claim, d)
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


def reconcile(request: ReplicationRequest, claim: Claim, d: Delivery) -> Outcome | None:
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
    d.gate.before_call(request.project_id, "list", request.lane, request.tenant)
    d.store.renew(claim, lease_s=d.settings.lease_s)
    existing = observed(
        claim,
        "list",
        lambda: d.client.find_replication(
            request,
            include_cancelled=claim.in_doubt or claim.attempts > 0,
            before_page=lambda: d.gate.before_call(
                request.project_id, "list", request.lane, request.tenant
            ),
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
