"""Where a created task stands on its way to syncing, as the fleet last saw it.

After a ticket succeeds, workers follow its task (see ``htap_sync.worker.following.judge``)
until it is *syncing* (stage Full or Incremental), *failed* (its create job Failed, stage
Cancelled, list status "No", or a ``last_error_of_alter_table``), or the follow deadline
passes (*unknown*).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class SyncState(StrEnum):
    """``following -> syncing | failed | unknown``."""

    FOLLOWING = "following"
    SYNCING = "syncing"
    FAILED = "failed"
    UNKNOWN = "unknown"

    @property
    def final(self) -> bool:
        """True once the fleet stops following the task."""
        return self is not SyncState.FOLLOWING


class SyncInfo(BaseModel):
    """The task's last observed state: list row fields, create job status, why it failed.

    ``stage`` and ``status`` are shown as the API answered them (the live service capitalises
    them, the SDK documents lower case); they are compared without case.
    """

    model_config = ConfigDict(extra="forbid")

    state: SyncState
    stage: str | None = None
    status: str | None = None
    percentage: str | None = None
    job_status: str | None = None
    fail_reason: str | None = None
    seen_at: datetime | None = None


# Why a reconciled ticket has no job id: stated on the result, once, in these words.
NO_JOB_ID_REASON = (
    "the create answer was lost and the task was found by the list call; the API offers no way"
    " to recover a job id (list and configuration answers carry none)"
)
