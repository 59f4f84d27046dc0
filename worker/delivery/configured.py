"""One delivery of a configured request (one carrying a selection): created in two phases, as
Huawei's provider does (taurus-api.md section 8), with the guarantees of a plain create.

1. **configure**: exactly one configuration call (``table-config-check`` with
   ``is_create_task`` "true" when the request has table configs, else ``database-config-check``)
   creates the task without a job id. The ticket is marked in doubt *before* it (the store's
   ``start``, on the ``configure`` API's bucket): it creates a task. A check result that is not
   a success creates nothing: the ticket fails with the results.
2. **read back** the task's configuration: a ``last_error_of_alter_table`` deletes the task
   (``DELETE .../replication {task_name}``) and fails the ticket with that error.
3. **start** it with the plain create call, which must answer a ``job_id``; the task is then
   enrolled for following with that job and the ticket succeeds, as a plain create does.

A ticket in doubt (a redelivery, an ambiguous answer, a refusal that may be our own task's)
looks first with the list call and goes on from the phase its task is in: absent, configure
(never while a dead holder's call may still be on its way); listed in ``Wait``, configured
but perhaps not started: read back, then start it (a start refused with "name exists" says it
was started already, and the ticket succeeds reconciled); listed in any other stage, started:
success, reconciled. Every call passes the gate (each API its own bucket, the breaker), and
every error after the task exists keeps the ticket in doubt, so nothing is configured twice.
"""

from __future__ import annotations

import logging

from htap_sync.common.errors import ApiError, Rejected, Retryable
from htap_sync.common.limits.gate import MustWait
from htap_sync.common.models import ErrorPayload, ReplicationRequest
from htap_sync.common.tickets.claims import Claim, FinishCall, Limits, Started
from htap_sync.worker.api.classify import says_name_exists
from htap_sync.worker.api.client import UNKNOWN_TASK_CODE, TaskRow
from htap_sync.worker.api.configure_calls import alter_error, configure, delete_task
from htap_sync.worker.delivery.record import record_created
from htap_sync.worker.delivery.recovery import (
    after_error,
    find_ours,
    out_of_budget,
    settle_found,
)
from htap_sync.worker.delivery.settle import Outcome, finished, note, observed
from htap_sync.worker.delivery.start import Delivery, follow_created, marked
from htap_sync.worker.delivery.ticket import step_by_step, wait_later

log = logging.getLogger("htap_sync.worker")
# Where a listed task of ours stands: configured (perhaps started, its stage not moved yet).
WAITING_STAGES = frozenset({"wait", ""})


def carry_on_configured(
    request: ReplicationRequest, started: Started, limits: Limits | None, d: Delivery
) -> Outcome:
    """A configured request's delivery from its start (``check_and_start``) to its end."""
    claim = started.claim
    try:
        ready: bool | Outcome | TaskRow
        if started.verdict == "marked":
            ready = marked(started, d, limits)
        else:
            # In doubt, the look returns a task waiting to be started, to go on from the
            # read-back.
            ready = step_by_step(request, started, d, limits, look=_look, api="configure")
        if isinstance(ready, Outcome):
            return ready
        if isinstance(ready, TaskRow):
            return _read_back(request, claim, d)
        if not ready:
            return Outcome("skipped", reason="lost the ticket")
        return _configure(request, claim, d)
    except MustWait as wait:
        return wait_later(claim, wait, d)
    except ApiError as exc:  # the look in doubt failed (the list call): retry, still in doubt
        return after_error(exc, claim, sent=False, d=d)


def _look(request: ReplicationRequest, claim: Claim, d: Delivery) -> Outcome | TaskRow | None:
    """Ask the list call where an earlier attempt left the task: None (absent), the row of
    our task waiting to be started, or the ticket's end (started: success; another's: taken).
    """
    existing = find_ours(request, claim, d)
    if existing is None:
        return None
    if existing.matches(request) and _waiting(existing):
        if out_of_budget(claim, d.settings, d.clock):
            why = "the task exists, configured, and was not started"
            return _fail(claim, d, "HTAP_SYNC.EXHAUSTED", f"gave up: {why}", None)
        return existing
    return settle_found(request, claim, existing, d)


def _waiting(row: TaskRow) -> bool:
    """A row that may be a configured task not started yet (stage Wait, status not No)."""
    return row.stage_key in WAITING_STAGES and (row.status or "").lower() != "no"


def _configure(request: ReplicationRequest, claim: Claim, d: Delivery) -> Outcome:
    """Phase 1, after the in-doubt mark: the configuration call, then on to the read-back."""
    try:
        checked = observed(
            claim, "configure", lambda: configure(d.client, request), d.gate, request.project_id
        )
    except ApiError as exc:
        return _configure_failed(request, claim, exc, d)
    if checked.failed:
        # A check that did not pass created nothing (the service's answer says so).
        why = "configuration check failed: " + "; ".join(checked.failed)
        return _fail(claim, d, "HTAP_SYNC.CHECK_FAILED", why, False)
    return _read_back(request, claim, d)


def _configure_failed(
    request: ReplicationRequest, claim: Claim, exc: ApiError, d: Delivery
) -> Outcome:
    """A failed configuration call: a refusal that may be our own task's looks first (a
    task found goes on from its phase); any other error retries or fails as a create's."""
    ours = says_name_exists(exc) or claim.in_doubt or claim.attempts > 0
    if not (isinstance(exc, Rejected) and ours):
        return after_error(exc, claim, sent=True, d=d, call="configure")
    try:
        looked = _look(request, claim, d)
    except MustWait as wait:
        return after_error(exc, claim, sent=True, d=d, keep_doubt=True, delay_s=wait.wait_s)
    except ApiError as list_error:
        log.info("ticket %s: list call failed after a refusal: %s", claim.ticket, list_error)
        return after_error(exc, claim, sent=True, d=d, keep_doubt=True, call="configure")
    if isinstance(looked, TaskRow):
        return _read_back(request, claim, d)
    if looked is not None:
        return looked
    if says_name_exists(exc):  # ours, not listed yet: the next delivery looks again
        return after_error(exc, claim, sent=True, d=d, keep_doubt=True, call="configure")
    payload = ErrorPayload.model_validate(exc.payload())
    d.store.fail(claim, payload, in_doubt=False, note=note("configure", "error", exc))
    finished(claim, "failed", d.clock)
    return Outcome("finished", reason=type(exc).__name__)


def _read_back(request: ReplicationRequest, claim: Claim, d: Delivery) -> Outcome:
    """Phase 2: the task's configuration; its alter error deletes it and fails the ticket."""
    try:
        d.gate.before_call(request.project_id, "configuration", request.lane, request.tenant)
        if not d.store.renew(claim, lease_s=d.settings.lease_s):
            return Outcome("skipped", reason="lost the ticket")
        configuration = observed(
            claim,
            "configuration",
            lambda: d.client.get_configuration(
                request.project_id, request.instance_id, request.task_name
            ),
            d.gate,
            request.project_id,
        )
    except ApiError as exc:
        return after_error(exc, claim, sent=False, d=d, keep_doubt=True, call="configuration")
    if configuration is None:  # configured, not known yet to this call: look again later
        unknown = Retryable("the configured task is not known yet", error_code=UNKNOWN_TASK_CODE)
        return after_error(unknown, claim, sent=False, d=d, keep_doubt=True, call="configuration")
    error = alter_error(configuration)
    if error:
        return _delete_and_fail(request, claim, error, d)
    return _start(request, claim, d)


def _delete_and_fail(request: ReplicationRequest, claim: Claim, error: str, d: Delivery) -> Outcome:
    """The task's configuration carries an alter error: delete the task, fail the ticket."""
    try:
        d.gate.before_call(request.project_id, "delete", request.lane, request.tenant)
        if not d.store.renew(claim, lease_s=d.settings.lease_s):
            return Outcome("skipped", reason="lost the ticket")
        observed(
            claim,
            "delete",
            lambda: delete_task(
                d.client, request.project_id, request.instance_id, request.task_name
            ),
            d.gate,
            request.project_id,
        )
    except ApiError as exc:  # still there: the next delivery looks, reads, deletes again
        return after_error(exc, claim, sent=False, d=d, keep_doubt=True, call="delete")
    why = f"last_error_of_alter_table: {error} (the task was deleted)"
    return _fail(claim, d, "HTAP_SYNC.ALTER_TABLE", why, False)


def _start(request: ReplicationRequest, claim: Claim, d: Delivery) -> Outcome:
    """Phase 3: the plain create call starts the configured task; its job id is followed."""
    try:
        d.gate.before_call(request.project_id, "create", request.lane, request.tenant)
        if not d.store.renew(claim, lease_s=d.settings.lease_s):
            return Outcome("skipped", reason="lost the ticket")
        created = observed(
            claim,
            "create",
            lambda: d.client.create_replication(request),
            d.gate,
            request.project_id,
        )
    except ApiError as exc:
        return _start_failed(request, claim, exc, d)
    follow = follow_created(d.enroll, claim.ticket, request, created.job_id)
    made = note("create", "created", request_id=created.request_id)
    call = FinishCall(claim, created.job_id, made, None, follow)
    if not record_created([call], d, many=False)[0]:
        return Outcome("skipped", reason="lost the ticket")
    finished(claim, "succeeded", d.clock)
    return Outcome("finished", reason="created")


def _start_failed(request: ReplicationRequest, claim: Claim, exc: ApiError, d: Delivery) -> Outcome:
    """A failed start: "name exists" says it was started (a look confirms it is ours); any
    other error keeps the doubt (the task exists), except a refusal, which fails the ticket
    and leaves the doubt, so a re-drive looks first and starts the task it finds."""
    if says_name_exists(exc):
        try:
            d.gate.before_call(request.project_id, "list", request.lane, request.tenant)
            existing = observed(
                claim,
                "list",
                lambda: d.client.find_replication(request, include_cancelled=True),
                d.gate,
                request.project_id,
            )
        except (ApiError, MustWait):
            return after_error(exc, claim, sent=True, d=d, keep_doubt=True)
        if existing is not None:
            return settle_found(request, claim, existing, d)
    if isinstance(exc, Rejected) and not says_name_exists(exc):
        payload = ErrorPayload.model_validate(exc.payload())
        d.store.fail(claim, payload, in_doubt=None, note=note("create", "error", exc))
        finished(claim, "failed", d.clock)
        return Outcome("finished", reason=type(exc).__name__)
    return after_error(exc, claim, sent=True, d=d, keep_doubt=True)


def _fail(claim: Claim, d: Delivery, code: str, why: str, in_doubt: bool | None) -> Outcome:
    """Fail the ticket with the product's own error ``code``."""
    d.store.fail(claim, ErrorPayload(error_code=code, error_msg=why), in_doubt=in_doubt)
    finished(claim, "failed", d.clock)
    log.warning("ticket %s: failed: %s", claim.ticket, why, extra={"ticket": claim.ticket})
    return Outcome("finished", reason=code)
