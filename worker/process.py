"""One delivery of one ticket, as a plain function of its collaborators (no Celery here).

The order of steps is what keeps a task from being created twice:

1. validate the message again (it is untrusted input, like any other);
2. claim the ticket: a stale run, a finished ticket or a live holder means do nothing;
3. if an earlier attempt may have created the task (``in_doubt``), ask the list call first;
4. mark the ticket in doubt, *then* POST; only an answer proving nothing was created clears it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Literal

from common.errors import Ambiguous, ApiError, Permanent, Rejected, RequestInvalid
from common.models import ErrorPayload
from common.models import parse_request as validate
from common.settings import Settings
from common.store import Claim, TicketStore
from common.tickets import ticket_id
from worker.backoff import backoff_s
from worker.client import TaurusClient


@dataclass(frozen=True)
class Outcome:
    """What the task wrapper does next: nothing more, or run again after ``delay_s``."""

    kind: Literal["finished", "retry", "skipped"]
    delay_s: float = 0.0
    reason: str = ""


def process_ticket(
    ticket: str,
    run: str,
    payload: Any,
    *,
    client: TaurusClient,
    store: TicketStore,
    settings: Settings,
    rng: random.Random,
) -> Outcome:
    """Carry one delivery of a ticket's message as far as it goes."""
    try:
        request = validate(payload)
    except RequestInvalid as exc:
        store.fail(ticket, run, ErrorPayload(error_code="HTAP_SYNC.INVALID", error_msg=str(exc)))
        return Outcome("finished", reason="invalid message")
    if ticket_id(request.project_id, request.instance_id, request.task_name) != ticket:
        store.fail(
            ticket,
            run,
            ErrorPayload(error_code="HTAP_SYNC.INVALID", error_msg="message names another ticket"),
        )
        return Outcome("finished", reason="ticket mismatch")

    claim = store.begin(ticket, run, lease_s=settings.lease_s)
    if not isinstance(claim, Claim):
        return Outcome("skipped", reason=claim)

    sent = False
    try:
        if claim.in_doubt:
            store.renew(ticket, run, lease_s=settings.lease_s)
            existing = client.find_replication(request)
            if existing is not None:
                if existing.matches(request):
                    store.succeed(ticket, run, None, reconciled=True)
                    return Outcome("finished", reason="reconciled")
                store.fail(
                    ticket,
                    run,
                    ErrorPayload(
                        error_code="HTAP_SYNC.NAME_TAKEN",
                        error_msg=f"a task named {request.task_name} already exists on the"
                        " instance with another database pair",
                    ),
                )
                return Outcome("finished", reason="name taken")
            if claim.attempts >= settings.max_attempts:
                store.fail(
                    ticket,
                    run,
                    ErrorPayload(
                        error_code="HTAP_SYNC.ATTEMPTS_EXHAUSTED",
                        error_msg=f"{claim.attempts} attempts failed and the task does not exist",
                    ),
                )
                return Outcome("finished", reason="attempts exhausted")
        if not store.start_attempt(ticket, run, lease_s=settings.lease_s):
            return Outcome("skipped", reason="lost the ticket")
        sent = True
        created = client.create_replication(request)
    except ApiError as exc:
        return _after_error(exc, claim, sent=sent, store=store, settings=settings, rng=rng)
    store.succeed(ticket, run, created.job_id, reconciled=False)
    return Outcome("finished", reason="created")


def _after_error(
    exc: ApiError,
    claim: Claim,
    *,
    sent: bool,
    store: TicketStore,
    settings: Settings,
    rng: random.Random,
) -> Outcome:
    # A "name exists" refusal while in doubt is our own earlier attempt: look again, later.
    name_exists_after_doubt = (
        isinstance(exc, Rejected) and exc.http_status == 409 and claim.in_doubt
    )
    if isinstance(exc, Permanent) and not name_exists_after_doubt:
        # A refusal of our create proves it created nothing; one of the list call proves less.
        proven = False if sent else None
        error = ErrorPayload.model_validate(exc.payload())
        store.fail(claim.ticket, claim.run, error, in_doubt=proven)
        return Outcome("finished", reason=type(exc).__name__)
    attempts = claim.attempts + int(sent)
    in_doubt = claim.in_doubt or (sent and (isinstance(exc, Ambiguous) or name_exists_after_doubt))
    payload = ErrorPayload.model_validate(exc.payload())
    if attempts >= settings.max_attempts and not in_doubt:
        # Not in doubt here means this attempt's answer proved nothing was created: record it,
        # or start_attempt's flag would make a re-drive reconcile for nothing.
        store.fail(claim.ticket, claim.run, payload, in_doubt=False)
        return Outcome("finished", reason="attempts exhausted")
    # Out of attempts but in doubt: one more delivery looks before it reports a failure, so a
    # task that exists is never reported as failed.
    store.retrying(claim.ticket, claim.run, payload, in_doubt=in_doubt)
    delay = backoff_s(
        max(attempts, 1),
        base_s=settings.backoff_base_s,
        max_s=settings.backoff_max_s,
        rng=rng,
        retry_after_s=exc.retry_after_s,
    )
    return Outcome("retry", delay_s=delay, reason=type(exc).__name__)
