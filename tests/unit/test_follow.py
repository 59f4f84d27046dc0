"""Following a created task: the client's list/jobs/configuration calls and the pure verdicts."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from htap_sync.common.errors import Rejected, Throttled
from htap_sync.common.models import parse_request
from htap_sync.common.sync_info import SyncState
from htap_sync.worker.api.classify import IN_PROGRESS_CODES, error_for, says_name_exists
from htap_sync.worker.api.client import Job, TaskRow
from htap_sync.worker.following.judge import (
    JOB_GRACE_S,
    Evidence,
    Followed,
    awaits_job_reason,
    judge,
    needs_configuration,
    needs_job,
)
from tests.conftest import request_data
from tests.unit.test_client import PATH, _client

PROJECT = "0123456789abcdef0123456789abcdef"
INSTANCE = "0f1e2d3c4b5a69788796a5b4c3d2e1f0in17"


def _row(name: str = "t1", stage: str = "Wait", status: str = "Yes") -> dict[str, object]:
    return {
        "task_name": name,
        "source_database": "src_db",
        "target_database": "tgt_db",
        "stage": stage,
        "status": status,
        "percentage": "10",
        "is_need_repair": False,
        "is_main_task": True,
    }


def _item(job_id: str | None = "job-1", deadline: float = 100.0, **kw: Any) -> Followed:
    return Followed("tk_1", "t1", job_id, deadline, **kw)


# --- the client -------------------------------------------------------------------------


def test_list_pages_by_100_until_total_count() -> None:
    """The list call is paged (limit 100, offset) until total_count, a string, is reached."""
    offsets: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == PATH and request.url.params["limit"] == "100"
        offset = int(request.url.params["offset"])
        offsets.append(str(offset))
        page = [_row(f"t{offset + i}") for i in range(min(100, 150 - offset))]
        return httpx.Response(200, json={"total_count": "150", "replications": page})

    rows = _client(handler).list_replications(PROJECT, INSTANCE)
    assert offsets == ["0", "100"]
    assert [r.task_name for r in rows][:2] == ["t0", "t1"] and len(rows) == 150
    assert rows[0].stage == "Wait" and rows[0].raw["is_main_task"] is True


def test_every_page_of_the_list_pays_its_token() -> None:
    """Paging runs ``before_page`` (the gate) before each page after the first: 250 tasks,
    three list calls, two more tokens taken than the caller's own."""
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        calls.append(f"page {offset}")
        page = [_row(f"t{offset + i}") for i in range(min(100, 250 - offset))]
        return httpx.Response(200, json={"total_count": "250", "replications": page})

    rows = _client(handler).list_replications(
        PROJECT, INSTANCE, before_page=lambda: calls.append("token")
    )
    assert len(rows) == 250
    assert calls == ["page 0", "token", "page 100", "token", "page 200"]


def test_find_ignores_a_cancelled_task_of_the_same_name() -> None:
    """A Cancelled row is nobody's task: reconciliation only counts a live one as ours."""
    rows = [_row("task_orders_001", stage="Cancelled")]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"total_count": "1", "replications": rows})

    client = _client(handler)
    request = parse_request(request_data())
    assert client.find_replication(request) is None
    rows.append(_row("task_orders_001", stage="incremental"))
    found = client.find_replication(request)
    assert found is not None and found.stage == "incremental" and found.matches(request)


def test_jobs_api_reads_status_and_treats_not_found_as_not_yet() -> None:
    """GET /v3/{project}/jobs?id= gives the job; a 4xx 'not found' means 'not there yet'."""
    answers = [
        httpx.Response(400, json={"error_code": "DBS.200823", "error_msg": "job not found"}),
        httpx.Response(
            200, json={"job": {"id": "job-1", "status": "Failed", "fail_reason": "binlog off"}}
        ),
    ]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers.pop(0)

    client = _client(handler)
    assert client.get_job(PROJECT, "job-1") is None
    job = client.get_job(PROJECT, "job-1")
    assert job == Job("job-1", "Failed", "binlog off") and job.failed and job.ended
    assert seen[0].url.path == f"/v3/{PROJECT}/jobs" and seen[0].url.params["id"] == "job-1"


def test_jobs_api_throttling_is_not_swallowed() -> None:
    """A 429 from the jobs API is an error the caller must wait out, not 'not found'."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, json={"error_code": "APIGW.0308", "error_msg": "slow down"})

    with pytest.raises(Throttled):
        _client(handler).get_job(PROJECT, "job-1")


def test_configuration_unknown_task_is_none() -> None:
    """The configuration call answers 400 DBS.270022 for an unknown task: that reads as None."""

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == f"{PATH}/configuration"
        if request.url.params["task_name"] == "known":
            return httpx.Response(200, json={"last_error_of_alter_table": "bad column"})
        return httpx.Response(400, json={"error_code": "DBS.270022", "error_msg": "no task"})

    client = _client(handler)
    assert client.get_configuration(PROJECT, INSTANCE, "other") is None
    assert client.get_configuration(PROJECT, INSTANCE, "known") == {
        "last_error_of_alter_table": "bad column"
    }


# --- classification ---------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(IN_PROGRESS_CODES))
def test_every_in_progress_code_is_retried(code: str) -> None:
    """All eight 'another operation in progress' codes on 409 are retryable, not refusals."""
    error = error_for(httpx.Response(409, json={"error_code": code, "error_msg": "busy"}))
    assert type(error).__name__ == "InProgress"


@pytest.mark.parametrize(
    ("status", "code", "msg", "exists"),
    [
        (409, "DBS.200022", "The task name already exists.", True),
        (400, "DBS.280001", "Task name has been used", True),
        (400, "DBS.200022", "Instance not found.", False),
        (403, "DBS.200001", "No permission", False),
    ],
)
def test_name_exists_is_read_by_meaning(status: int, code: str, msg: str, exists: bool) -> None:
    """'Name exists' is recognised on 409 or by its message, whatever the status code."""
    error = error_for(httpx.Response(status, json={"error_code": code, "error_msg": msg}))
    assert isinstance(error, Rejected)
    assert says_name_exists(error) is exists


# --- verdicts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "status", "state"),
    [
        ("Full", "Yes", SyncState.SYNCING),
        ("incremental", "yes", SyncState.SYNCING),
        ("INCREMENTAL", "Yes", SyncState.SYNCING),
        ("Wait", "Yes", SyncState.FOLLOWING),
        ("Cancelled", "Yes", SyncState.FAILED),
        ("Wait", "No", SyncState.FAILED),
        ("Paused", "Yes", SyncState.FOLLOWING),
    ],
)
def test_stage_and_status_decide_without_case(stage: str, status: str, state: SyncState) -> None:
    """Full/Incremental is syncing, Cancelled or status No is failed; case does not matter.
    (The create job has ended: it can say nothing more, so the list row decides.)"""
    row = TaskRow.from_api(_row(stage=stage, status=status))
    info = judge(_item(job_status="Completed"), Evidence(row=row), now=10.0)
    assert info.state is state
    assert (info.stage, info.status, info.percentage) == (stage, status, "10")
    assert (info.fail_reason is not None) is (state is SyncState.FAILED)


def test_a_failed_job_fails_the_task_with_its_reason() -> None:
    """The create job Failed: the task failed, with the job's fail_reason."""
    info = judge(_item(), Evidence(job=Job("job-1", "Failed", "source binlog off")), now=1.0)
    assert info.state is SyncState.FAILED and info.job_status == "Failed"
    assert info.fail_reason is not None and "source binlog off" in info.fail_reason


def test_an_alter_table_error_fails_the_task() -> None:
    """A non-empty last_error_of_alter_table is a failed task (as the provider treats it)."""
    row = TaskRow.from_api(_row(stage="Wait"))
    info = judge(_item(job_id=None), Evidence(row=row, alter_error="column type"), now=1.0)
    assert info.state is SyncState.FAILED and "column type" in (info.fail_reason or "")


def test_a_failure_in_the_list_waits_for_its_jobs_reason() -> None:
    """A Cancelled row whose create job this round did not learn (throttled, failed or not
    known yet) stays following, JOB_GRACE_S at most after it was first seen; the job's
    reason wins once the job answers; after the grace the row's reason is final."""
    row = TaskRow.from_api(_row(stage="Cancelled"))
    first = _item()
    assert judge(first, Evidence(row=row, call_error="HTTP 429"), now=10.0).state is (
        SyncState.FOLLOWING
    )
    assert awaits_job_reason(first, Evidence(row=row), now=10.0)
    seen_at_10 = _item(failing_since=10.0)
    failed_job = Job(job_id="job-1", status="Failed", fail_reason="binlog is off")
    later = judge(seen_at_10, Evidence(row=row, job=failed_job), now=20.0)
    assert later.state is SyncState.FAILED and "binlog is off" in (later.fail_reason or "")
    still = judge(seen_at_10, Evidence(row=row), now=10.0 + JOB_GRACE_S - 0.1)
    assert still.state is SyncState.FOLLOWING
    late = judge(seen_at_10, Evidence(row=row), now=10.0 + JOB_GRACE_S)
    assert late.state is SyncState.FAILED and "Cancelled" in (late.fail_reason or "")


def test_a_failure_without_a_job_to_ask_is_final_at_once() -> None:
    """A reconciled ticket (no job id) or an ended job: the row's failure is final now."""
    row = TaskRow.from_api(_row(stage="Cancelled"))
    assert judge(_item(job_id=None), Evidence(row=row), now=1.0).state is SyncState.FAILED
    done = Job(job_id="job-1", status="Completed", fail_reason=None)
    assert judge(_item(), Evidence(row=row, job=done), now=1.0).state is SyncState.FAILED


def test_not_listed_yet_is_following_until_the_deadline() -> None:
    """A task not in the list yet is no failure; past the deadline its state is unknown."""
    assert judge(_item(deadline=100.0), Evidence(), now=99.0).state is SyncState.FOLLOWING
    late = judge(_item(deadline=100.0), Evidence(call_error="HTTP 503"), now=100.0)
    assert late.state is SyncState.UNKNOWN and "HTTP 503" in (late.fail_reason or "")


def test_jobs_are_asked_only_while_they_can_tell_something() -> None:
    """No jobs call for a reconciled ticket, an ended job, or a task already syncing."""
    wait_row = TaskRow.from_api(_row(stage="Wait"))
    full_row = TaskRow.from_api(_row(stage="Full"))
    assert needs_job(_item(), None) and needs_job(_item(), wait_row)
    assert not needs_job(_item(), full_row)
    assert not needs_job(_item(job_id=None), wait_row)
    assert not needs_job(_item(job_status="Completed"), wait_row)


def test_configuration_is_read_only_for_a_stuck_listed_task() -> None:
    """The configuration call is for a listed task before syncing whose job has ended."""
    wait_row = TaskRow.from_api(_row(stage="Wait"))
    done = Job("job-1", "Completed")
    assert needs_configuration(_item(), wait_row, done)
    assert needs_configuration(_item(job_id=None), wait_row, None)
    assert not needs_configuration(_item(), wait_row, Job("job-1", "Running"))
    assert not needs_configuration(_item(), None, done)
    assert not needs_configuration(_item(), TaskRow.from_api(_row(stage="Full")), done)
