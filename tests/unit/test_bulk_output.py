"""``bulk -o FILE`` never destroys what a user wrote: the input is refused as the output, and a
run that stops before its first row leaves a previous results file as it was."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from htap_sync.cli.bulk import _Output, bulk
from tests.conftest import VALID

PREVIOUS = '{"line":2,"outcome":"queued"}\n'


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory of the test's own (no stray .env is read)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _rows(path: Path) -> Path:
    path.write_text(",".join(VALID) + "\n" + ",".join(VALID.values()) + "\n")
    return path


def test_the_input_is_refused_as_the_output(here: Path) -> None:
    """``bulk rows.csv -o rows.csv`` (or another path to the same file) exits 2 and leaves the
    input whole."""
    source = _rows(here / "rows.csv")
    before = source.read_text()
    (here / "sub").mkdir()
    for spelled in ("rows.csv", str(source), "sub/../rows.csv"):
        ran = CliRunner().invoke(bulk, ["rows.csv", "-o", spelled])
        assert ran.exit_code == 2, ran.output
        assert "is the input file" in ran.output
    link = here / "link.csv"
    link.symlink_to(source)
    ran = CliRunner().invoke(bulk, ["rows.csv", "-o", str(link)])
    assert ran.exit_code == 2, ran.output
    assert source.read_text() == before


@pytest.mark.parametrize(
    ("content", "env", "code"),
    [
        ("", {}, 2),  # an empty input
        (None, {"HTAP_SYNC_REDIS_URL": "redis://127.0.0.1:6379/abc"}, 78),  # a wrong setting
    ],
)
def test_a_run_that_stops_early_leaves_the_results_file(
    here: Path, content: str | None, env: dict[str, str], code: int
) -> None:
    """A run that stops before any row keeps the previous results, and leaves no temp file."""
    source = here / "rows.csv"
    if content is None:
        _rows(source)
    else:
        source.write_text(content)
    results = here / "results.jsonl"
    results.write_text(PREVIOUS)
    ran = CliRunner().invoke(bulk, ["rows.csv", "-o", "results.jsonl"], env=env)
    assert ran.exit_code == code, ran.output
    assert results.read_text() == PREVIOUS
    assert sorted(p.name for p in here.iterdir()) == ["results.jsonl", "rows.csv"]


def test_results_replace_the_target_only_at_the_end(tmp_path: Path) -> None:
    """Lines go to a file beside the target; closing renames it onto the target with the
    target's mode; closing with no line drops it and keeps the target."""
    target = tmp_path / "results.jsonl"
    target.write_text(PREVIOUS)
    target.chmod(0o640)
    out = _Output(target)
    out.write('{"line":2}')
    assert target.read_text() == PREVIOUS
    assert out.temp is not None and out.temp.parent == tmp_path
    out.close()
    assert target.read_text() == '{"line":2}\n'
    assert target.stat().st_mode & 0o777 == 0o640
    empty = _Output(target)
    empty.close()
    assert target.read_text() == '{"line":2}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.jsonl"]


def test_a_symlinked_target_stays_a_link(tmp_path: Path) -> None:
    """``-o`` naming a symlink writes the file it points to; the link stays."""
    real = tmp_path / "real.jsonl"
    real.write_text(PREVIOUS)
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    out = _Output(link)
    out.write("{}")
    out.close()
    assert link.is_symlink()
    assert real.read_text() == "{}\n"


def test_a_pipe_or_device_is_written_directly() -> None:
    """``-o /dev/stdout`` (a device, or a pipe): written as it comes, no file beside it."""
    out = _Output(Path("/dev/null"))
    assert out.temp is None
    out.write("{}")
    out.close()
