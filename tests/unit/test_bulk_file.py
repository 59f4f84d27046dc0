"""Bulk files are read row by row, with line numbers, and unreadable rows become errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from htap_sync.producer.bulk_file import detect_format, read_rows
from tests.conftest import VALID

HEADER = ",".join(VALID)


def _write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_csv_rows_carry_their_line_numbers(tmp_path: Path) -> None:
    """Line 1 is the header; blank lines are skipped but still counted."""
    row = ",".join(VALID.values())
    path = _write(tmp_path, "in.csv", f"{HEADER}\n{row}\n\n{row}\n")
    rows = list(read_rows(path))
    assert [r.line for r in rows] == [2, 4]
    assert rows[0].data == VALID
    assert rows[0].errors == []


def test_csv_quoted_newlines_keep_the_starting_line(tmp_path: Path) -> None:
    """A record spanning lines is reported at the line where it starts."""
    row = ",".join(VALID.values())
    bad = row.replace("task_orders_001", '"two\nlines"')
    path = _write(tmp_path, "in.csv", f"{HEADER}\n{bad}\n{row}\n")
    rows = list(read_rows(path))
    assert [r.line for r in rows] == [2, 4]
    assert rows[0].data is not None and rows[0].data["task_name"] == "two\nlines"


def test_csv_empty_cells_are_absent_and_extra_cells_are_errors(tmp_path: Path) -> None:
    """An empty optional cell means 'absent'; more cells than columns is an error for that row."""
    header = HEADER + ",source_node_id"
    row = ",".join(VALID.values())
    path = _write(tmp_path, "in.csv", f"{header}\n{row},\n{row},,surplus\n")
    first, second = read_rows(path)
    assert first.data == VALID
    assert second.data is None
    assert second.errors[0]["field"] == "row"


def test_csv_with_a_byte_order_mark(tmp_path: Path) -> None:
    """A spreadsheet's UTF-8 BOM does not become part of the first column's name."""
    row = ",".join(VALID.values())
    path = _write(tmp_path, "in.csv", ("\ufeff" + f"{HEADER}\n{row}\n").encode())
    (only,) = read_rows(path)
    assert only.data == VALID


def test_jsonl_rows_and_their_errors(tmp_path: Path) -> None:
    """Each JSON line is a row; bad JSON and non-objects are errors naming the line."""
    lines = [json.dumps(VALID), "", "{not json", "[1, 2]", json.dumps({**VALID, "x": None})]
    path = _write(tmp_path, "in.jsonl", "\n".join(lines) + "\n")
    rows = list(read_rows(path))
    assert [r.line for r in rows] == [1, 3, 4, 5]
    assert rows[0].data == VALID
    assert rows[1].data is None and "not valid JSON" in rows[1].errors[0]["rule"]
    assert rows[2].data is None and rows[2].errors[0]["rule"] == "must be a JSON object"
    assert rows[3].data == VALID  # null counts as absent


def test_deeply_nested_json_is_an_error_not_a_crash(tmp_path: Path) -> None:
    """A hostile line nested thousands deep is reported, and the next line still reads."""
    path = _write(tmp_path, "in.jsonl", '{"a":' * 100_000 + "\n" + json.dumps(VALID) + "\n")
    first, second = read_rows(path)
    assert first.data is None
    assert second.data == VALID


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("a.csv", "x", "csv"),
        ("a.jsonl", "x", "jsonl"),
        ("a.ndjson", "x", "jsonl"),
        ("a.txt", '\n  {"a": 1}\n', "jsonl"),
        ("a.txt", "project_id,task_name\n", "csv"),
    ],
)
def test_format_by_suffix_then_content(tmp_path: Path, name: str, text: str, expected: str) -> None:
    """The suffix decides; otherwise a first '{' means JSON Lines."""
    assert detect_format(_write(tmp_path, name, text)) == expected


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60)
@given(st.binary(max_size=400))
def test_any_bytes_read_without_crashing(tmp_path: Path, blob: bytes) -> None:
    """Whatever a file holds, reading it yields rows or row errors, never an exception."""
    for name in ("fuzz.csv", "fuzz.jsonl"):
        path = _write(tmp_path, name, blob)
        for row in read_rows(path):
            assert row.line >= 1
            assert (row.data is None) == bool(row.errors)
