"""House rules a reviewer would otherwise count by hand: module and function sizes, Lua in files,
and a README layout table that names the modules of common/ as they are."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Every folder of Python we write: product, tests, benchmarks. src/htap_sync's symlinks to the
# product folders are skipped there (their targets are checked under their own folder).
FOLDERS = ("common", "producer", "worker", "simulator", "src", "tests", "bench")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
# Functions allowed to be longer, by (module, name), with why: literal data, not logic.
LONG_LITERAL_DATA: dict[tuple[str, str], str] = {}


def _modules() -> list[Path]:
    found: list[Path] = []
    for name in FOLDERS:
        folder = (ROOT / name).resolve()
        found += [p for p in sorted(folder.rglob("*.py")) if p.resolve().is_relative_to(folder)]
    return found


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_the_check_sees_every_folder() -> None:
    """The walk finds modules in each folder (a check over nothing would pass by itself)."""
    seen = {_name(p).split("/")[0] for p in _modules()}
    assert seen == set(FOLDERS)
    assert "src/htap_sync/cli/__init__.py" in {_name(p) for p in _modules()}
    assert not any(_name(p).startswith("src/htap_sync/common/") for p in _modules())


def test_no_module_is_over_400_lines() -> None:
    """Each module of product, tests and benchmarks has at most 400 lines."""
    too_long = {
        _name(p): n for p in _modules() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert too_long == {}


def _long_functions(source: str, module: str) -> dict[tuple[str, str], int]:
    """The functions of ``source`` over 60 lines, by (module, name), with their lengths."""
    return {
        (module, node.name): length
        for node in ast.walk(ast.parse(source, module))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (length := (node.end_lineno or node.lineno) - node.lineno + 1) > MAX_FUNCTION_LINES
    }


def test_no_function_is_over_60_lines_but_literal_data() -> None:
    """Each function (or method) has at most 60 lines, save the named builders of literal data."""
    too_long: dict[tuple[str, str], int] = {}
    for path in _modules():
        too_long |= _long_functions(path.read_text(), _name(path))
    assert {k: n for k, n in too_long.items() if k not in LONG_LITERAL_DATA} == {}


def test_the_length_check_counts_from_def_to_last_line() -> None:
    """A 61-line method is caught, a 60-line function is not; decorators are not counted."""
    body = "\n".join(f"        x{i} = {i}" for i in range(59))
    source = (
        f"class C:\n    @staticmethod\n    def long() -> int:\n{body}\n        return 0\n\n"
        f"def fits() -> None:\n{body.replace('        ', '    ')}\n"
    )
    assert _long_functions(source, "sample.py") == {("sample.py", "long"): 61}


def test_lua_lives_in_lua_files() -> None:
    """No Lua in Python strings: scripts ship as .lua files, registered by common.scripts only."""
    inline = [
        _name(p)
        for p in _modules()
        if not _name(p).startswith(("tests/", "bench/"))
        and _name(p) != "common/scripts.py"
        and ("register_script" in p.read_text() or "redis.call(" in p.read_text())
    ]
    assert inline == []


def test_readme_layout_names_every_module_of_common() -> None:
    """The README's layout row for common/ names each of its modules, and no module it lacks."""
    row = next(
        line
        for line in (ROOT / "README.md").read_text().splitlines()
        if line.startswith("| `htap_sync.common` |")
    )
    named = set(re.findall(r"`(\w+\.py)`", row))
    present = {p.name for p in (ROOT / "common").glob("*.py")} - {"__init__.py"}
    assert named == present
