"""House rules a reviewer would otherwise check by hand: no import cycles, no import pointing up
the layers, Lua in files loaded only by the module it ships beside, functions of at most 60
lines, and a README layout table that names every module as it is. A module is as long as its
concept needs (no line cap)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Every folder of Python we write: product, tests, benchmarks. src/htap_sync's symlinks to the
# product folders are skipped there (their targets are checked under their own folder).
FOLDERS = ("common", "producer", "worker", "simulator", "src", "tests", "bench")
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


def _script_loads(source: str) -> list[str]:
    """How each ``script(...)`` call of ``source`` names the module its Lua ships beside."""
    return [
        ast.unparse(node.args[1])
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "script"
        and len(node.args) >= 2
    ]


def test_a_script_is_loaded_by_the_module_it_ships_beside() -> None:
    """Every ``script(client, beside, name)`` of the product passes ``__name__``: its own
    module. Another package's Lua comes in through that package's module, imported (so the
    dependency is one the layer rules see), never through a package name in a string."""
    loads = {
        _name(p): found
        for p in _modules()
        if not _name(p).startswith(("tests/", "bench/")) and (found := _script_loads(p.read_text()))
    }
    assert len(loads) >= 8  # tickets, delayed set, claims, bucket, breaker, following, ...
    assert {m: f for m, f in loads.items() if set(f) != {"__name__"}} == {}
    composed = (ROOT / "common" / "tickets" / "claims_redis.py").read_text()
    assert '"htap_sync.' not in composed and "bucket.__name__" in composed


def test_the_script_check_sees_a_string() -> None:
    """A package named in a string is what the check reports."""
    assert _script_loads('script(c, "htap_sync.worker", "bucket.lua")') == ["'htap_sync.worker'"]


# Layers, lowest first: a module imports only modules of its own layer or below. Within a
# layer, the no-cycle rule keeps the order. Longest prefix wins.
LAYERS: tuple[tuple[str, ...], ...] = (
    (
        "htap_sync.common.settings",
        "htap_sync.common.settings_sections",
        "htap_sync.common.settings_names",
        "htap_sync.common.settings_rate",
        "htap_sync.common.lanes",
        "htap_sync.common.errors",
        "htap_sync.common.keys",
        "htap_sync.common.models",
        "htap_sync.common.sync_info",
        "htap_sync.common.scripts",
        "htap_sync.common.logs",
        "htap_sync.common.tickets.ids",
    ),
    ("htap_sync.common.limits",),
    ("htap_sync.common.tickets",),
    ("htap_sync.common",),  # connections, the Celery app, the broker: built from the above
    ("htap_sync.simulator", "htap_sync.producer", "htap_sync.worker.api"),
    ("htap_sync.worker.metrics", "htap_sync.worker.threads", "htap_sync.worker.preflight"),
    ("htap_sync.worker.delivery", "htap_sync.worker.mover"),
    ("htap_sync.worker.following",),
    ("htap_sync.worker.runtime", "htap_sync.worker.fleet"),
    ("htap_sync.worker",),  # the tasks, the verdicts, the lifecycle, main
    ("htap_sync",),  # the public API, the CLI (the composition root), the devstack
)
PARTS = {
    "htap_sync.common": ROOT / "common",
    "htap_sync.producer": ROOT / "producer",
    "htap_sync.worker": ROOT / "worker",
    "htap_sync.simulator": ROOT / "simulator",
    "htap_sync": ROOT / "src" / "htap_sync",
}


def _product_modules() -> dict[str, Path]:
    """Every module of the product by its import name (the symlinked parts under their own)."""
    found: dict[str, Path] = {}
    for package, folder in PARTS.items():
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if package == "htap_sync" and parts[0] in {"common", "producer", "worker", "simulator"}:
                continue
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            found[".".join([package, *parts])] = path
    return found


def _top_imports(tree: ast.Module) -> set[str]:
    """What a module imports when it is imported (not in functions, not for type checking),
    each ``from a import b`` as both ``a`` and ``a.b``."""
    out: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.Import):
                out.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                out.add(node.module)
                out.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.If | ast.Try):
                visit(node.body)
                visit(node.orelse)
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    visit(tree.body)
    return out


def _graph() -> dict[str, set[str]]:
    modules = _product_modules()
    # A package's __init__ holds its map, no code: ``from htap_sync.worker import metrics``
    # depends on metrics, not on the package.
    targets = {name for name, path in modules.items() if path.name != "__init__.py"}
    return {
        name: {m for m in _top_imports(ast.parse(path.read_text())) if m in targets} - {name}
        for name, path in modules.items()
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Import cycles of ``graph`` (each as the path that closes it)."""
    state: dict[str, int] = {}
    found: list[list[str]] = []
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                found.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def _layer(module: str) -> int:
    best = max(
        (
            (len(prefix), n)
            for n, layer in enumerate(LAYERS)
            for prefix in layer
            if module == prefix or module.startswith(prefix + ".")
        ),
    )
    return best[1]


def test_no_import_cycles() -> None:
    """No module imports, directly or not, a module that imports it back (at import time)."""
    graph = _graph()
    assert len(graph) > 100 and "htap_sync.worker.delivery.ticket" in graph
    assert _cycles(graph) == []


def test_the_cycle_check_finds_one() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


def test_no_import_points_up_the_layers() -> None:
    """A module imports only its own layer and those below (common's base < limits < tickets <
    common's clients < the API calls < delivery < following < runtime < tasks < the CLI)."""
    upward = sorted((a, b) for a, deps in _graph().items() for b in deps if _layer(b) > _layer(a))
    assert upward == []


def test_the_layers_are_ordered_as_read() -> None:
    """The layer of a few modules, as the README's drawing has them."""
    assert _layer("htap_sync.common.tickets.ids") < _layer("htap_sync.common.limits.gate")
    assert _layer("htap_sync.common.limits.gate") < _layer("htap_sync.common.tickets.claims")
    assert _layer("htap_sync.worker.api.client") < _layer("htap_sync.worker.delivery.ticket")
    assert _layer("htap_sync.worker.delivery.ticket") < _layer("htap_sync.worker.tasks")
    assert _layer("htap_sync.worker.tasks") < _layer("htap_sync.cli")


def test_readme_layout_names_every_module() -> None:
    """The README's layout table names each module of the product's packages (and its rooms'
    modules), and no module that is not there."""
    readme = (ROOT / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| `htap_sync")]
    named = {
        m for row in rows for m in re.findall(r"`((?:common|producer|worker)/[\w/]+\.py)`", row)
    }
    present = {
        path.relative_to(ROOT).as_posix()
        for folder in ("common", "producer", "worker")
        for path in (ROOT / folder).rglob("*.py")
        if path.name != "__init__.py"
    }
    assert named == present


def _argv_read(lua: str) -> int:
    """The highest ``ARGV[n]`` a script reads by number."""
    return max(int(n) for n in re.findall(r"ARGV\[(\d+)\]", lua))


def test_each_composed_script_reads_the_arguments_its_layout_declares() -> None:
    """bucket.lua, breaker.lua, begin.lua and update.lua read exactly the ARGV that
    common/tickets/layouts.py (and the modules owning them) declare: the callers' slices are
    cut by those counts."""
    from htap_sync.common.limits import breaker, bucket
    from htap_sync.common.tickets import layouts

    lua = {
        name: (ROOT / folder / f"{name}.lua").read_text()
        for folder, name in [
            ("common/limits", "bucket"),
            ("common/limits", "breaker"),
            ("common/tickets", "begin"),
            ("common/tickets", "update"),
        ]
    }
    assert _argv_read(lua["bucket"]) == bucket.ARGC
    assert _argv_read(lua["breaker"]) == breaker.ARGC
    assert _argv_read(lua["begin"]) == layouts.BEGIN_ARGC
    assert _argv_read(lua["update"]) == layouts.UPDATE_HEAD
    assert f"for i = {layouts.UPDATE_HEAD + 1}, #ARGV" in lua["update"]
    args = bucket.script_args(bucket.BucketPolicy(rate_per_s=1, burst=1), None, "acquire")
    assert len(args) == bucket.ARGC
    policy = breaker.BreakerPolicy(threshold=1, cooldown_s=1)
    assert len(breaker.script_args(policy, None, "allow")) == breaker.ARGC


def test_no_slice_of_a_composed_call_is_a_bare_number() -> None:
    """start.lua, finish.lua and their batch forms cut each function's ARGV by the layout's
    constants, never by numbers written in the Lua (three places once had to agree)."""
    for name in ("start", "start_many", "finish", "finish_many"):
        lua = (ROOT / "common" / "tickets" / f"{name}.lua").read_text()
        code = "\n".join(line for line in lua.splitlines() if not line.startswith("--"))
        assert not re.findall(r"unpack\(ARGV, (?:[2-9]|\d\d)", code), name
        assert not re.findall(r"argv\[\d+\]", code), name
        assert not re.findall(r"ARGV\[(?:[2-9]|\d\d+)\]", code), name
