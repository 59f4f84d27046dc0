"""The first steps of one delivery: its collaborators, the check of its message, the start.

``checked`` validates the message and starts the ticket in one store step (claim, gate,
in-doubt mark: see :meth:`ClaimStore.start`); ``start_attempt_or_wait`` is that mark taken on
its own, after a look when in doubt or a short wait of the gate. Either way the mark is
durable (on the replicas asked for) before the create call goes out; when the replicas lag,
``unreplicated`` gives the attempt back and the ticket waits, nothing sent.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, cast

from htap_sync.common.errors import RequestInvalid
from htap_sync.common.limits.gate import CallGate
from htap_sync.common.models import ErrorPayload, ReplicationRequest
from htap_sync.common.models import parse_request as validate
from htap_sync.common.settings import Settings
from htap_sync.common.tickets.claims import (
    Claim,
    ClaimStore,
    Following,
    Limits,
    NotReplicated,
    StartCall,
    Started,
)
from htap_sync.worker import metrics
from htap_sync.worker.api.client import TaurusClient
from htap_sync.worker.delivery.settle import Outcome

log = logging.getLogger("htap_sync.worker")
# A valid message: its request and the arguments of its start.
Checked = tuple[ReplicationRequest, StartCall]


def invalid(store: ClaimStore, claim: Claim, why: str, reason: str) -> Outcome:
    """Fail a ticket whose message is not valid (``why``); the delivery ends (``reason``)."""
    store.fail(claim, ErrorPayload(error_code="HTAP_SYNC.INVALID", error_msg=why))
    return Outcome("finished", reason=reason)


# Called with (ticket, request, job_id) once a task is known to exist, before the ticket
# succeeds, so a worker killed between the two never leaves a created task unfollowed.
Enroll = Callable[[str, ReplicationRequest, str | None], None]


class EnrollsWithSuccess(Protocol):
    """An :data:`Enroll` whose writes the ticket store can make with the success itself."""

    def __call__(self, ticket: str, request: ReplicationRequest, job_id: str | None) -> None: ...

    def following(
        self, ticket: str, request: ReplicationRequest, job_id: str | None
    ) -> Following: ...


def follow_created(
    enroll: Enroll, ticket: str, request: ReplicationRequest, job_id: str | None
) -> Following | None:
    """Enroll a created task before its ticket succeeds: now, or (returned) with the success
    in the store's ``finish``."""
    # An EnrollsWithSuccess (looked up by name: isinstance on a Protocol costs more per
    # ticket than the rest of this function).
    following = getattr(enroll, "following", None)
    if following is not None:
        return cast(Following, following(ticket, request, job_id))
    enroll(ticket, request, job_id)
    return None


def no_enroll(ticket: str, request: ReplicationRequest, job_id: str | None) -> None:
    """Following is off: nothing to do."""


@dataclass(frozen=True)
class Delivery:
    """The collaborators one delivery works with."""

    client: TaurusClient
    store: ClaimStore
    settings: Settings
    rng: random.Random
    gate: CallGate
    clock: Callable[[], float]
    enroll: Enroll
    replicas: Callable[[], int]


def marked(started: Started, d: Delivery, limits: Limits | None) -> bool | Outcome:
    """After a start that marked the attempt: send (after a reserved token's sleep), or wait
    for the replicas that do not hold the mark yet."""
    if started.unreplicated is not None:
        return unreplicated(started.claim, started.unreplicated, d)
    if started.wait_s > 0 and limits is not None:
        limits.sleep(started.wait_s)
    return True


def start_attempt_or_wait(claim: Claim, d: Delivery) -> bool | Outcome:
    """Count the attempt and mark doubt durably (on enough replicas); or wait, sending nothing.

    Returns:
        True to send; False when the ticket was lost; an Outcome when replicas lag behind.
    """
    wanted = d.replicas()
    try:
        return d.store.start_attempt(
            claim,
            lease_s=d.settings.lease_s,
            replicas=wanted,
            wait_s=d.settings.redis.wait_timeout_s,
        )
    except NotReplicated as exc:
        return unreplicated(claim, exc, d)


def unreplicated(claim: Claim, exc: NotReplicated, d: Delivery) -> Outcome:
    """Nothing was sent: give the attempt back, keep the doubt as it was, and wait."""
    wait_s = d.settings.redis.wait_timeout_s
    d.store.retrying(
        claim,
        ErrorPayload(error_code="HTAP_SYNC.NOT_REPLICATED", error_msg=str(exc)),
        in_doubt=claim.in_doubt,
        due_at=d.clock() + wait_s,
        refund_attempt=True,
    )
    metrics.WAITS.labels("replication").inc()
    log.warning("ticket %s: waits for Redis replicas (%s)", claim.ticket, exc)
    return Outcome("waiting", delay_s=wait_s, reason="replication")


def check(ticket: str, run: str, payload: Any, d: Delivery) -> Checked | Outcome:
    """Validate the message and check it names its ticket: the request and its start's
    arguments; or the outcome of a message that is not valid (its ticket failed)."""
    store = d.store
    try:
        request = validate(payload)
    except RequestInvalid as exc:
        return invalid(store, Claim(ticket, run), str(exc), "invalid message")
    if request.ticket != ticket:
        return invalid(store, Claim(ticket, run), "message names another ticket", "ticket mismatch")
    limits_of = getattr(d.gate, "limits", None)  # a LimitedGate (see follow_created)
    # A configured request's first call is the configuration call: its own API's bucket.
    api = "configure" if request.configured else "create"
    limits = (
        limits_of(request.project_id, api, request.lane, request.tenant)
        if limits_of is not None
        else None
    )
    return request, StartCall(ticket, run, request.fingerprint(), limits)


def own_start(call: StartCall, started: Started | str, d: Delivery) -> Started | Outcome:
    """A start of the message's own request, or why the delivery ends here (no claim, or a
    message that differs from the request its ticket recorded)."""
    if not isinstance(started, Started):
        return Outcome("skipped", reason=started)
    if started.claim.fingerprint != call.fingerprint:
        why = "message differs from the request its ticket recorded"
        return invalid(d.store, started.claim, why, "request mismatch")
    return started


def check_and_start(
    ticket: str, run: str, payload: Any, d: Delivery
) -> tuple[ReplicationRequest, Started, Limits | None] | Outcome:
    """Validate the message, check it names its ticket, start it (claim, and mark the attempt
    when the gate lets it go and nothing asks for a look first); or why not."""
    checked = check(ticket, run, payload, d)
    if isinstance(checked, Outcome):
        return checked
    request, call = checked
    settings = d.settings
    started = d.store.start(
        call, lease_s=settings.lease_s, replicas=d.replicas(), wait_s=settings.redis.wait_timeout_s
    )
    found = own_start(call, started, d)
    if isinstance(found, Outcome):
        return found
    return request, found, call.limits
