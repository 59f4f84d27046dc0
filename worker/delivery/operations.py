"""One delivery of an operation ticket (pause, resume, delete, modify; taurus-api.md §8), with
the guarantees of a create: every call through the gate (each operation its own bucket, the
shared breaker), retries with backoff (409 "in progress" included), and a look before any call.

1. validate the message, claim the ticket (a stale run, a finished ticket, a live holder: do
   nothing);
2. the task's create ticket still on its way (queued, running, retrying): wait for it;
3. look (a list call, shared by the instance's tickets: see
   :mod:`~htap_sync.worker.delivery.shared_look`): the predicate already holds (paused,
   running again, absent) means done, nothing sent: a rerun is a no-op; a pause or resume of
   a task the list does not show fails (``HTAP_SYNC.NO_TASK``);
4. a call this run already sent (its job kept on the ticket) is not sent again: its job is
   read (``Failed`` fails the ticket with its reason) and the ticket looks again later;
5. otherwise count the attempt, mark the ticket in doubt, send the call, keep its job, and
   look again after ``HTAP_SYNC_FOLLOW_INTERVAL_S``. A delete answered ``DBS.05000091`` was
   already done. A modify is done when its job is ``Completed``.

An operation waiting for its predicate gives up at the delivery deadline
(``HTAP_SYNC.EXHAUSTED``), as a create's retries do.
"""

from __future__ import annotations

import logging
from typing import Any

from htap_sync.common.errors import ApiError, RequestInvalid, TicketNotFound
from htap_sync.common.limits.gate import MustWait
from htap_sync.common.models import ErrorPayload, OperationRequest, TicketState
from htap_sync.common.operations import holds, instance_of, parse_operation, ticket_of
from htap_sync.common.tickets.claims import Claim
from htap_sync.common.tickets.ids import ticket_id
from htap_sync.worker.api.client import TaskRow, TaurusClient, replication_path
from htap_sync.worker.api.configure_calls import ALREADY_DELETED, check_body
from htap_sync.worker.delivery.recovery import after_error, out_of_budget
from htap_sync.worker.delivery.settle import Outcome, finished, note, observed
from htap_sync.worker.delivery.shared_look import look, look_after
from htap_sync.worker.delivery.start import (
    Delivery,
    invalid,
    start_attempt_or_wait,
)
from htap_sync.worker.delivery.ticket import wait_later

log = logging.getLogger("htap_sync.worker")


def is_operation(payload: Any) -> bool:
    """True when a message's request is an operation's (it names its operation)."""
    return isinstance(payload, dict) and "operation" in payload


def process_operation(ticket: str, run: str, payload: Any, d: Delivery) -> Outcome:
    """Carry one delivery of an operation ticket's message as far as it goes."""
    try:
        operation = parse_operation(payload)
    except RequestInvalid as exc:
        return invalid(d.store, Claim(ticket, run), str(exc), "invalid message")
    if ticket_of(operation) != ticket:
        return invalid(d.store, Claim(ticket, run), "message names another ticket", "mismatch")
    claim = d.store.begin(ticket, run, lease_s=d.settings.lease_s)
    if not isinstance(claim, Claim):
        return Outcome("skipped", reason=claim)
    if claim.fingerprint != operation.fingerprint():
        why = "message differs from the request its ticket recorded"
        return invalid(d.store, claim, why, "request mismatch")
    try:
        return _carry_on(operation, claim, d)
    except MustWait as wait:
        return wait_later(claim, wait, d)
    except ApiError as exc:  # a look or a job read failed: nothing was sent by this step
        return after_error(exc, claim, sent=False, d=d, keep_doubt=claim.in_doubt)


def _carry_on(op: OperationRequest, claim: Claim, d: Delivery) -> Outcome:
    if _create_on_its_way(op, d):
        return _later(claim, d, "create")
    job_id = _sent_job(claim, d)
    if op.operation == "modify":
        return _modify(op, claim, job_id, d)
    seen = look(op, claim, d, after=look_after(op, claim, job_id, d))
    row = seen.row
    if row is not None and not _ours(op, row):
        why = f"the task {op.task_name} copies other databases than ours: left alone"
        return _fail(claim, d, "HTAP_SYNC.NAME_TAKEN", why)
    stage = None if row is None else (row.stage or "")
    if holds(op.operation, stage):
        return _done(op, claim, d, job_id, row)
    if row is None:
        why = f"the list does not show the task {op.task_name}"
        return _fail(claim, d, "HTAP_SYNC.NO_TASK", why)
    if job_id:
        return _watch_job(op, claim, job_id, d, f"stage {stage}", seen.epoch)
    return _send(op, claim, d)


def _ours(op: OperationRequest, row: TaskRow) -> bool:
    """True unless the operation names its databases and the row copies others."""
    for expected, listed in (
        (op.source_database, row.source_database),
        (op.target_database, row.target_database),
    ):
        if expected is not None and expected != listed:
            return False
    return True


def _create_on_its_way(op: OperationRequest, d: Delivery) -> bool:
    """True while the task's create ticket is queued, running or retrying."""
    create = ticket_id(op.project_id, op.instance_id, op.task_name)
    try:
        found = d.store.get(create)
    except TicketNotFound:  # unknown or expired: nothing on its way
        return False
    return not found.state.terminal


def _sent_job(claim: Claim, d: Delivery) -> str:
    """The job of this run's accepted call ('' when none was accepted yet)."""
    if not claim.in_doubt:
        return ""
    return d.store.get(claim.ticket).job_id or ""


def _modify(op: OperationRequest, claim: Claim, job_id: str, d: Delivery) -> Outcome:
    """A modify is done when its job is Completed: send the PUT once, then read the job."""
    if job_id:
        return _watch_job(op, claim, job_id, d, "its job has not completed")
    return _send(op, claim, d)


def _watch_job(
    op: OperationRequest,
    claim: Claim,
    job_id: str,
    d: Delivery,
    why: str,
    looked: int | None = None,
) -> Outcome:
    """The call was accepted: its job Failed fails the ticket; a modify's Completed ends it;
    otherwise look again later (until the deadline), with a list call after ``looked`` (the
    number of the one this look used)."""
    d.gate.before_call(op.project_id, "jobs")
    job = observed(
        claim, "jobs", lambda: d.client.get_job(op.project_id, job_id), d.gate, op.project_id
    )
    if job is not None and job.failed:
        reason = job.fail_reason or "no reason given"
        return _fail(claim, d, "HTAP_SYNC.JOB_FAILED", f"{op.operation} job {job_id}: {reason}")
    if op.operation == "modify" and job is not None and job.status.lower() == "completed":
        return _done(op, claim, d, job_id, None)
    if out_of_budget(claim, d.settings, d.clock):
        done = f"{op.operation} job {job_id} accepted, but not done in time: {why}"
        return _fail(claim, d, "HTAP_SYNC.EXHAUSTED", done)
    return _later(claim, d, "operation", look_after=looked)


def _send(op: OperationRequest, claim: Claim, d: Delivery) -> Outcome:
    """Count the attempt, mark the ticket in doubt, send the operation's call, keep its job."""
    d.gate.before_call(op.project_id, op.operation)
    ready = start_attempt_or_wait(claim, d)
    if isinstance(ready, Outcome):
        return ready
    if not ready:
        return Outcome("skipped", reason="lost the ticket")
    try:
        answer = observed(claim, op.operation, lambda: call(d.client, op), d.gate, op.project_id)
    except ApiError as exc:
        if op.operation == "delete" and exc.error_code == ALREADY_DELETED:
            return _done(op, claim, d, "", None)
        return after_error(exc, claim, sent=True, d=d, call=op.operation)
    job_id = str(answer.get("job_id") or "")
    sent = note(op.operation, "sent")
    delay_s = d.settings.following.interval_s
    answered = d.store.list_epoch(instance_of(op))  # its next look: a list call started later
    due_at = d.clock() + delay_s
    if not d.store.operation_sent(claim, job_id, due_at=due_at, note=sent, look_after=answered):
        return Outcome("skipped", reason="lost the ticket")
    log.info("ticket %s: %s sent (job %s)", claim.ticket, op.operation, job_id)
    return Outcome("waiting", delay_s=delay_s, reason="operation")


def call(client: TaurusClient, op: OperationRequest) -> dict[str, Any]:
    """The operation's call (taurus-api.md §8): POST pause/resume, DELETE or PUT with a body.

    Raises:
        ApiError: as :meth:`TaurusClient.send_json`.
    """
    path = replication_path(op.project_id, op.instance_id)
    name = {"task_name": op.task_name}
    if op.operation in ("pause", "resume"):
        return client.send_json("POST", f"{path}/{op.operation}", name)
    if op.operation == "delete":
        return client.send_json("DELETE", path, name)
    if op.change is None:  # parse_operation lets no modify without its change through
        rule = {"field": "change", "rule": "required", "message": "change: required"}
        raise RequestInvalid([rule])
    body = check_body(op.change)
    body.pop("is_create_task", None)
    body["is_support_reg_exp"] = "false"
    return client.send_json("PUT", path, body)


def _done(
    op: OperationRequest, claim: Claim, d: Delivery, job_id: str, row: TaskRow | None
) -> Outcome:
    """The predicate holds: success (``reconciled`` when this run sent nothing)."""
    already = not claim.in_doubt and not job_id
    found = None if row is None else row.raw
    holding = note("list" if op.operation != "modify" else "jobs", "holds")
    d.store.succeed(claim, job_id or None, reconciled=already, note=holding, found=found)
    finished(claim, TicketState.SUCCEEDED.value, d.clock)
    return Outcome("finished", reason="reconciled" if already else "created")


def _later(claim: Claim, d: Delivery, reason: str, look_after: int | None = None) -> Outcome:
    """Look again after the follow interval; costs no attempt."""
    delay_s = d.settings.following.interval_s
    d.store.postpone(claim, due_at=d.clock() + delay_s, look_after=look_after)
    return Outcome("waiting", delay_s=delay_s, reason=reason)


def _fail(claim: Claim, d: Delivery, code: str, why: str) -> Outcome:
    d.store.fail(claim, ErrorPayload(error_code=code, error_msg=why), in_doubt=False)
    finished(claim, TicketState.FAILED.value, d.clock)
    log.warning("ticket %s: failed: %s", claim.ticket, why, extra={"ticket": claim.ticket})
    return Outcome("finished", reason=code)
