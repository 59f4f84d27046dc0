"""Judging where a created task stands, from what the service said in one round (pure logic).

The facts come from the live service's behaviour (taurus-api.md section 7): a task is *syncing*
once its list row's stage is Full or Incremental; it has *failed* when its create job Failed,
its stage is Cancelled, its list ``status`` is "No", or its configuration carries a
``last_error_of_alter_table``. Stages and statuses are compared without case. A task not yet
in the list, or a job not yet known, is no failure: both can take seconds to appear.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from htap_sync.common.sync_info import SyncInfo, SyncState
from htap_sync.worker.api.client import Job, TaskRow

SYNCING_STAGES = frozenset({"full", "incremental"})
# A failure the list shows waits this long for its create job's reason (a throttled or failed
# jobs call, or a job not known yet, is asked again at the next rounds) before it is final.
JOB_GRACE_S = 30.0


@dataclass(frozen=True)
class Followed:
    """One ticket whose task is followed: what a round needs to know about it.

    Attributes:
        ticket: the ticket id.
        task_name: the task's name on its instance.
        job_id: the create job, or None for a reconciled ticket (its job id is lost).
        deadline: epoch seconds after which following gives up (state *unknown*).
        job_status: the job status seen last, if any (an ended job is not asked again).
        failing_since: when a round first saw the list show a failure that waits for its
            job's reason (see :data:`JOB_GRACE_S`).
        lane: the ticket's lane (None: enrolled before lanes, or without one).
        tenant: the ticket's fairness key (None: its project).
    """

    ticket: str
    task_name: str
    job_id: str | None
    deadline: float
    job_status: str | None = None
    failing_since: float | None = None
    lane: str | None = None
    tenant: str | None = None

    @property
    def job_ended(self) -> bool:
        """The create job was seen Completed or Failed: no need to ask again."""
        return (self.job_status or "").lower() in {"completed", "failed", "canceled", "cancelled"}


@dataclass(frozen=True)
class Evidence:
    """What one round learnt about one task."""

    row: TaskRow | None = None
    job: Job | None = None
    alter_error: str | None = None
    call_error: str | None = None


def needs_job(item: Followed, row: TaskRow | None) -> bool:
    """Ask the jobs API only while it can still tell something the list does not."""
    syncing = row is not None and row.stage_key in SYNCING_STAGES
    return item.job_id is not None and not item.job_ended and not syncing


def needs_configuration(item: Followed, row: TaskRow | None, job: Job | None) -> bool:
    """Look at the configuration of a task that is listed but stuck before syncing.

    The provider treats a non-empty ``last_error_of_alter_table`` as a failed task; it only
    matters for a task that has not reached Full or Incremental while its job has ended (or
    is unknown for good, on a reconciled ticket).
    """
    if row is None or row.stage_key in SYNCING_STAGES or row.cancelled:
        return False
    return (job is not None and job.ended) or item.job_ended or item.job_id is None


def judge(item: Followed, seen: Evidence, *, now: float) -> SyncInfo:
    """The task's state after one round: following, syncing, failed, or unknown (too late)."""
    row, job = seen.row, seen.job
    info = SyncInfo(
        state=SyncState.FOLLOWING,
        stage=row.stage if row else None,
        status=row.status if row else None,
        percentage=row.percentage if row else None,
        job_status=job.status if job else item.job_status,
        seen_at=datetime.fromtimestamp(now, UTC),
    )
    reason = _failure(row, job, seen.alter_error)
    if reason is not None and not awaits_job_reason(item, seen, now=now):
        return info.model_copy(update={"state": SyncState.FAILED, "fail_reason": reason})
    if row is not None and row.stage_key in SYNCING_STAGES:
        return info.model_copy(update={"state": SyncState.SYNCING})
    if now >= item.deadline:
        why = "not syncing before the follow deadline"
        if seen.call_error:
            why += f"; last call failed: {seen.call_error}"
        elif row is None:
            why += "; the task is not in the list"
        return info.model_copy(update={"state": SyncState.UNKNOWN, "fail_reason": why})
    return info


def awaits_job_reason(item: Followed, seen: Evidence, *, now: float) -> bool:
    """The list (or configuration) shows a failure, and the create job can still say why:
    this round did not learn the job's end (the jobs call was throttled or failed, or the
    job is not known yet). Its verdict waits for the job, :data:`JOB_GRACE_S` at most after
    the failure was first seen, and never past the follow deadline."""
    if item.job_id is None or item.job_ended or (seen.job is not None and seen.job.ended):
        return False
    if _failure(seen.row, seen.job, seen.alter_error) is None:
        return False
    since = item.failing_since if item.failing_since is not None else now
    return now < since + JOB_GRACE_S and now < item.deadline


def shows_failure(row: TaskRow | None) -> bool:
    """The list row alone says the task failed (Cancelled, or status "No")."""
    return _failure(row, None, None) is not None


def _failure(row: TaskRow | None, job: Job | None, alter_error: str | None) -> str | None:
    if job is not None and job.failed:
        return f"create job {job.job_id} failed: {job.fail_reason or 'no reason given'}"
    if row is not None and row.cancelled:
        return "the task's stage is Cancelled"
    if row is not None and (row.status or "").lower() == "no":
        return f"the list reports status {row.status!r} (stage {row.stage!r})"
    if alter_error:
        return f"last_error_of_alter_table: {alter_error}"
    return None
