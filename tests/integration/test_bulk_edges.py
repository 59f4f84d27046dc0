"""Bad bulk files at the edges: one huge cell, UTF-16 or binary files, empty or header-only
files and wrong headers; a clear error and a non-zero exit, never half a submission."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from htap_sync.common.settings import Settings
from htap_sync.producer.api import Producer
from tests.conftest import VALID, request_data
from tests.integration.test_cli import _read_jsonl, htap_sync


def _csv_text(rows: list[dict[str, str]], header: list[str] | None = None) -> str:
    names = header or list(VALID)
    lines = [",".join(names)]
    lines += [",".join(row.get(n, "") for n in names) for row in rows]
    return "\r\n".join(lines) + "\r\n"


def test_a_ten_megabyte_cell_is_one_invalid_row(
    tmp_path: Path, settings: Settings, producer: Producer
) -> None:
    """A 10 MB cell (far past csv's own 128 KiB limit) is an invalid row naming its field;
    the 500 rows before it and the 100 after are all queued."""
    good = [request_data(task_name=f"edge_{i:03d}") for i in range(600)]
    huge = request_data(task_name="edge_huge", source_database="x" * 10_000_000)
    path = tmp_path / "huge.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(VALID))
        writer.writeheader()
        writer.writerows([*good[:500], huge, *good[500:]])
    out = tmp_path / "out.jsonl"
    ran = htap_sync(settings, "bulk", str(path), "-o", str(out))
    assert ran.returncode == 1, ran.stderr
    lines = _read_jsonl(out)
    assert len(lines) == 601
    (bad,) = [line for line in lines if line["state"] == "invalid"]
    assert bad["line"] == 502
    assert [e["field"] for e in bad["errors"]] == ["source_database"]
    assert producer.store.count_by_state()["queued"] == 600


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("utf16.csv", _csv_text([request_data()]).encode("utf-16"), "UTF-16"),
        ("binary.csv", bytes(range(256)) * 64, "NUL bytes"),
        ("random.csv", bytes(range(128, 256)) * 64, "not UTF-8 text"),
        ("empty.csv", b"", "empty"),
        ("blank.jsonl", b"\n\n  \n", "empty"),
        ("header.csv", _csv_text([]).encode(), "a header but no rows"),
        (
            "unknown.csv",
            _csv_text([request_data()], [*VALID, "colour"]).encode(),
            "unknown column(s) colour",
        ),
        (
            "missing.csv",
            _csv_text([request_data()], [n for n in VALID if n != "task_name"]).encode(),
            "missing column(s) task_name",
        ),
    ],
)
def test_a_bad_file_is_refused_whole(
    tmp_path: Path, settings: Settings, producer: Producer, name: str, content: bytes, message: str
) -> None:
    """The file is refused before anything is queued: exit 2, a message that says why."""
    path = tmp_path / name
    path.write_bytes(content)
    ran = htap_sync(settings, "bulk", str(path))
    assert ran.returncode == 2, (ran.stdout, ran.stderr)
    assert message in ran.stderr
    assert "Traceback" not in ran.stderr
    assert producer.queue_depth() == 0


def test_a_run_refused_by_redis_keeps_the_previous_results(
    tmp_path: Path, settings: Settings, producer: Producer
) -> None:
    """A wrong Redis password stops the run before its first row: exit 69, and the results
    file a previous run wrote is left whole (no temp file beside it); the next good run
    replaces it."""
    path = tmp_path / "rows.csv"
    path.write_text(_csv_text([request_data(task_name="keep_1")]))
    out = tmp_path / "results.jsonl"
    out.write_text('{"line":2,"outcome":"queued"}\n')
    url = settings.redis.url
    wrong = f"redis://nobody:wrong-password@{url.host}:{url.port}{url.path}"
    ran = htap_sync(settings, "bulk", str(path), "-o", str(out), env={"HTAP_SYNC_REDIS_URL": wrong})
    assert ran.returncode == 69, ran.stderr
    assert out.read_text() == '{"line":2,"outcome":"queued"}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.jsonl", "rows.csv"]
    ran = htap_sync(settings, "bulk", str(path), "-o", str(out))
    assert ran.returncode == 0, ran.stderr
    assert [line["outcome"] for line in _read_jsonl(out)] == ["queued"]
