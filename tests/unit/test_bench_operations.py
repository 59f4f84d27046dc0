"""The operations benchmark's pure helpers (bench.operations): calls by API, stages, rows."""

from __future__ import annotations

from typing import Any

from bench.operations import Phase, calls, calls_between, rows_of, stage_of, unseen


def test_calls_reads_the_list_and_every_task_route() -> None:
    snapshot = {"list_calls": 7, "task_calls": {"pause": 2, "jobs": 1}, "created": 9}
    assert calls(snapshot) == {"list": 7, "pause": 2, "jobs": 1}
    assert calls({}) == {"list": 0}


def test_calls_between_counts_each_api_from_zero_when_new() -> None:
    before = {"list_calls": 10, "task_calls": {"jobs": 4}}
    after = {"list_calls": 16, "task_calls": {"jobs": 4, "pause": 3}}
    assert calls_between(before, after) == {"jobs": 0, "list": 6, "pause": 3}


def test_stage_of_finds_the_task_row_or_none() -> None:
    rows: list[dict[str, Any]] = [
        {"task_name": "a", "stage": "Paused"},
        {"task_name": "b", "stage": None},
    ]
    assert stage_of(rows, "a") == "Paused"
    assert stage_of(rows, "b") == ""
    assert stage_of(rows, "c") is None


def test_rows_of_one_phase_per_api_seen_and_all_calls() -> None:
    mine = Phase("pause", 4, {"pause": 4, "list": 8, "jobs": 0})
    theirs = Phase("pause", 4, {"pause": 4, "list": 12, "configuration": 0, "delete": 1})
    rows = rows_of(mine, theirs)
    assert [r.measure for r in rows] == [
        "pause: pause calls per task",
        "pause: list calls per task",
        "pause: all calls per task",
    ]
    assert rows[1].value == 2 and rows[1].reference_value == 3
    assert rows[-1].value == 3 and rows[-1].reference_value == 4.25
    assert rows[-1].note == "also delete calls"


def test_unseen_names_the_apis_neither_way_called() -> None:
    mine = Phase("resume", 2, {"resume": 2, "list": 4, "jobs": 0})
    theirs = Phase("resume", 2, {"resume": 2, "list": 6})
    assert unseen(mine, theirs) == ["pause", "jobs"]
    assert unseen(mine, Phase("resume", 2, {"jobs": 1})) == ["pause"]
