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

On Redis the common path is two scripts (:meth:`ClaimStore.start`, :meth:`ClaimStore.finish`):
the claim, the gate (a token, the breaker), the in-doubt mark (and ``WAIT`` for replicas,
after the mark and before the POST) in one; the success, the breaker's record and the
enrolment in the other. A ticket in doubt is only claimed by the first, and looks before its
mark; a wait of the gate marks nothing and costs no attempt.

A configured request (one carrying a selection) takes the same start, then its two phases
(configure, read back, start: :mod:`htap_sync.worker.delivery.configured`), with these same steps.

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

from htap_sync.common.errors import ApiError
from htap_sync.common.limits.gate import OPEN_GATE, Api, CallGate, MustWait
from htap_sync.common.models import ReplicationRequest
from htap_sync.common.settings import Settings
from htap_sync.common.tickets.claims import Claim, ClaimStore, FinishCall, Limits, Started
from htap_sync.worker import metrics
from htap_sync.worker.api.client import TaurusClient
from htap_sync.worker.delivery.lane_gate import pass_gate, wait_first
from htap_sync.worker.delivery.record import record_created
from htap_sync.worker.delivery.recovery import (
    create_failed,
    exhausted_in_doubt,
    reconcile,
)
from htap_sync.worker.delivery.settle import Outcome, finished, note, observed
from htap_sync.worker.delivery.start import (
    Delivery,
    Enroll,
    check_and_start,
    follow_created,
    marked,
    no_enroll,
    start_attempt_or_wait,
)

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
    store: ClaimStore,
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
    d = Delivery(
        client, store, settings, rng, gate or OPEN_GATE, clock, enroll or no_enroll, replicas
    )
    return process(ticket, run, payload, d)


def process(ticket: str, run: str, payload: Any, d: Delivery) -> Outcome:
    """:func:`process_ticket` with its collaborators already gathered (a worker's task)."""
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
        # Two phases (worker/delivery/configured.py, which uses this module's steps): imported here.
        from htap_sync.worker.delivery.configured import carry_on_configured

        return carry_on_configured(request, started, limits, d)
    claim = started.claim
    # Marked by start: finish tells the breaker; else the gate heard the call (after_call).
    told_by_finish = limits if started.verdict == "marked" else None
    sent = False
    try:
        if started.verdict == "marked":
            ready = marked(started, d, limits)
        else:
            ready = step_by_step(request, started, d, limits, look=reconcile, api="create")
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
            dead holder's last call to wait out (:func:`_in_flight_until`).
    """
    claim = started.claim
    wait_first(started, limits, request, d.settings)
    if claim.in_doubt:
        looked = look(request, claim, d)
        in_flight_until = _in_flight_until(claim, d.settings)
        if looked is None and in_flight_until > d.clock():
            # Taken over from a dead holder whose last create may still be on its way: absent
            # now proves nothing until that call has ended; look again then.
            raise MustWait(in_flight_until - d.clock(), "lease")
        found = looked if looked is not None else exhausted_in_doubt(claim, d)
        if found is not None:
            return found
    pass_gate(request, d.gate, limits, api, d.settings)  # sleeps for a short wait
    return start_attempt_or_wait(claim, d)


def _in_flight_until(claim: Claim, settings: Settings) -> float:
    """Until when a dead holder's last create may still reach the API (0: no dead holder).

    Its lease would have run until ``claim.dead_lease_until``, its in-doubt mark (or a later
    renewal) plus the lease; its call ends within ``settings.in_flight_s`` of the mark.
    """
    if not claim.dead_lease_until:
        return 0.0
    marked_at = claim.dead_lease_until - settings.lease_s
    return min(claim.dead_lease_until, marked_at + settings.in_flight_s)


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
