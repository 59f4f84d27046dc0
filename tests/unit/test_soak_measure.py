"""The soak's measures and table (bench.soak.measure, bench.soak.table): pure, no processes."""

from __future__ import annotations

import dataclasses

from bench.soak import measure
from bench.soak.measure import Drain, Fault, Row, Sample, Seen
from bench.soak.table import COLUMNS, cells, markdown

REASON = "binlog off"


def _seen(n: int, state: str | None, sync: str | None = None, reason: str | None = None) -> Seen:
    return Seen(f"tk_{n}", "i1", f"t_{n}", state, sync, reason)


def _task(n: int, failure: str | None = None) -> dict[str, object]:
    return {"instance_id": "i1", "task_name": f"t_{n}", "failure": failure}


def test_lost_counts_every_ticket_not_succeeded_or_failed() -> None:
    """Queued, running, retrying and unknown (None) tickets are lost; final ones are not."""
    seen = [_seen(0, "succeeded"), _seen(1, "failed"), _seen(2, "queued"), _seen(3, None)]
    seen.append(_seen(4, "retrying"))
    assert measure.lost(seen) == 3


def test_created_twice_reads_the_simulators_list() -> None:
    """One per task in created_more_than_once; none when the list is empty or missing."""
    assert measure.created_twice({"created_more_than_once": [{"task_name": "a"}] * 2}) == 2
    assert measure.created_twice({}) == 0


def test_a_false_failure_is_a_failed_ticket_whose_task_exists() -> None:
    """Failed with its task on the simulator counts; failed without it, or succeeded, not."""
    seen = [_seen(0, "failed"), _seen(1, "failed"), _seen(2, "succeeded")]
    assert measure.false_failures(seen, [_task(0), _task(2)]) == 1
    seen[0] = Seen("tk_0", "i1", "t_0", "failed", error="400 DBS.280005: name exists")
    errors = measure.false_failure_errors(seen, [_task(0), _task(2)])
    assert errors == {"400 DBS.280005: name exists": 1}


def test_left_following_counts_succeeded_tickets_not_final() -> None:
    """Following, or no sync state yet, on a succeeded ticket; never a failed one."""
    seen = [
        _seen(0, "succeeded", "following"),
        _seen(1, "succeeded", None),
        _seen(2, "succeeded", "syncing"),
        _seen(3, "succeeded", "unknown"),
        _seen(4, "failed", None),
    ]
    assert measure.left_following(seen) == 2
    late = Seen("tk_5", "i1", "t_5", "succeeded", "following", succeeded_at=130.0)
    early = Seen("tk_6", "i1", "t_6", "succeeded", "following", succeeded_at=90.0)
    # due_by: the end minus the follow deadline; a ticket succeeded later is not due yet.
    assert measure.left_following([late, early], due_by=100.0) == 1
    assert measure.left_following([late, early]) == 2


def test_fail_reasons_kept_of_tasks_whose_job_failed() -> None:
    """Only tasks failed by their job count; a ticket keeps the reason when it contains it."""
    seen = [
        _seen(0, "succeeded", "failed", f"job Failed: {REASON}"),
        _seen(1, "succeeded", "failed", "stage Cancelled"),
        _seen(2, "succeeded", "failed", None),
        _seen(3, "succeeded", "failed", "stage Cancelled"),
    ]
    tasks = [_task(0, "job_failed"), _task(1, "job_failed"), _task(2, "job_failed")]
    tasks.append(_task(3, "cancelled"))
    assert measure.reasons_kept(seen, tasks, REASON) == (1, 3)
    # A reconciled ticket has no job id to ask: it is counted apart, not as a reason lost.
    seen[2] = dataclasses.replace(seen[2], reconciled=True)
    assert measure.reasons_kept(seen, tasks, REASON) == (1, 2)
    assert measure.reconciled_failed_jobs(seen, tasks) == 1


def test_drain_runs_from_the_faults_end_to_the_first_look_with_all_done() -> None:
    """Left at the fault's end from the last look before it; bound = left / rate + grace;
    a fault ending after all were done drains in 0 s; never done gives None and the wait."""
    timeline = [Sample(100.0, 10, 10), Sample(110.0, 40, 40), Sample(150.0, 100, 90)]
    faults = [Fault("kill", 105.0), Fault("redis", 111.0, grace_s=30.0), Fault("late", 160.0)]
    assert measure.drains(faults, timeline, 100, 10.0) == (
        Drain("kill", 45.0, 9.0 + 45.0, 45.0),
        # The kill's bound (105 + 54 s) still runs 48 s past the restart's end.
        Drain("redis", 39.0, 6.0 + 30.0, 39.0, carried_s=48.0),
        Drain("late", 0.0, 0.0 + 45.0, 0.0),
    )
    (never,) = measure.drains([Fault("kill", 105.0)], timeline[:2], 100, 10.0)
    assert never == Drain("kill", None, 9.0 + 45.0, 5.0)
    assert not never.met
    assert measure.drains([Fault("x", 1.0)], [], 5, 10.0) == (Drain("x", None, 45.5, 0.0),)
    # A drain past its own bound but within an earlier fault's, still running, is met.
    assert Drain("redis", 40.0, 36.0, carried_s=48.0).met
    assert not Drain("redis", 50.0, 36.0, carried_s=48.0).met


def test_largest_fall_of_the_succeeded_count() -> None:
    """The deepest fall below an earlier peak; 0 for a count that only grows."""
    grows = [Sample(float(t), t, t) for t in range(5)]
    assert measure.largest_fall(grows) == 0
    falls = [Sample(0, 0, 263), Sample(1, 0, 164), Sample(2, 0, 200), Sample(3, 0, 150)]
    assert measure.largest_fall(falls) == 113


def test_peaks_per_api_from_the_simulators_logs() -> None:
    """Every instance's times pooled; the most in any one-second window; 0 without calls."""
    listed = [{"instance_id": "a", "times": [1.0, 1.5]}, {"instance_id": "b", "times": [1.9, 3]}]
    calls = {"create": [0.0, 0.5, 0.99, 1.0], "list": measure.calls_json_times(listed)}
    calls["jobs"] = []
    assert measure.peaks(calls) == {"create": 3, "list": 3, "jobs": 0}  # [t, t + 1 s)


def _row(**overrides: object) -> Row:
    fields: dict[str, object] = {
        "scenario": "1 batched",
        "path": "batched",
        "rows": 400,
        "lost": 0,
        "created_twice": 0,
        "false_failures": 0,
        "left_following": 3,
        "reasons_kept": (9, 11),
        "drains": (Drain("kill", 52.04, 73.0, 52.0), Drain("redis", None, 48.0, 80.4)),
        "peaks": {"create": 20, "list": 21, "jobs": 4},
        "limit": 20,
        "notes": ("ran 90 s of 140",),
    }
    fields.update(overrides)
    return Row(**fields)  # type: ignore[arg-type]


def test_cells_of_a_row() -> None:
    """One cell per column; drains past the bound, or never done, and peaks over it say OVER."""
    assert cells(_row()) == [
        "1 batched",
        "batched",
        "400",
        "0",
        "0",
        "0",
        "3",
        "9 / 11",
        "kill 52.0; redis >80 (OVER)",
        "kill 73.0; redis 48.0",
        "20 / 21 / 4 (OVER)",
        "20",
    ]
    assert len(cells(_row())) == len(COLUMNS)
    quiet = cells(_row(drains=(Drain("kill", 80.0, 73.0),), peaks={"create": 20}))
    assert quiet[8:11] == ["kill 80.0 (OVER)", "kill 73.0", "20 / 0 / 0"]
    assert cells(_row(drains=()))[8:10] == ["-", "-"]


def test_markdown_has_the_header_one_row_each_the_notes_and_what_broke() -> None:
    """Header lines first, then the table; a row's notes under it; the hard guarantees."""
    good, bad = _row(), _row(scenario="2 single", lost=2, created_twice=1, false_failures=0)
    text = markdown([good, bad], header=["# Soak", "settings"])
    lines = text.splitlines()
    assert lines[:3] == ["# Soak", "settings", ""]
    assert lines[3] == "| " + " | ".join(COLUMNS) + " |"
    assert lines[5].startswith("| 1 batched | batched | 400 |")
    assert lines[6].startswith("| 2 single | batched | 400 | 2 | 1 | 0 |")
    assert "* 1 batched: ran 90 s of 140" in lines
    assert lines[-1] == "Hard guarantees broken: 2 single: lost 2, 2 single: created twice 1."
    assert good.broken() == [] and bad.broken() == ["2 single: lost 2", "2 single: created twice 1"]
    assert markdown([good], header=[]).splitlines()[-1] == "Hard guarantees broken: none."


def test_the_bound_at_the_rate_the_bucket_allowed() -> None:
    """A drain is also judged at the mean rate the bucket allowed while it ran (0 while a
    Retry-After blocked it): 40 tickets left, allowed 4, 0 and 2 per second (mean 2): 20 s
    + 45 s. Past the configured-rate bound but within that one, the cell says so."""
    timeline = [
        Sample(100.0, 60, 60, 10.0),
        Sample(101.0, 60, 60, 4.0),
        Sample(110.0, 80, 80, 0.0),
        Sample(170.0, 100, 100, 2.0),
    ]
    (drain,) = measure.drains([Fault("kill", 101.0)], timeline, 100, 10.0)
    assert drain.seconds == 69.0 and drain.bound_s == 49.0
    assert drain.allowed_per_s == 2.0 and drain.allowed_bound_s == 65.0
    assert not drain.met and not drain.met_at_allowed
    late = Drain("kill", 60.0, 49.0, 60.0, 65.0, 2.0)
    assert late.met_at_allowed
    assert measure.mean_allowed([Sample(1.0, 0, 0)], 0.0, 2.0) is None
