"""Figures, tables, the machine they ran on, and BENCHMARKS.md."""

from __future__ import annotations

import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from htap_sync.devstack import RedisServer, find_redis_server

COMMAND = "make bench   # = .venv/bin/python -m bench"
_STARTED = time.monotonic()


@dataclass(frozen=True)
class Goal:
    """What the issue asks of a ratio: at most (``<=``) or at least (``>=``) ``bound``."""

    op: str
    bound: float

    def __post_init__(self) -> None:
        if self.op not in ("<=", ">="):
            raise ValueError(f"op: must be '<=' or '>=', not {self.op!r}")

    def met(self, ratio: float) -> bool:
        """True when ``ratio`` meets the goal."""
        return ratio <= self.bound if self.op == "<=" else ratio >= self.bound

    def verdict(self, ratio: float) -> str:
        """``<= 1.20: met`` or ``>= 4.00: NOT met``, for the table's goal column."""
        return f"{self.op} {self.bound:.2f}: {'met' if self.met(ratio) else 'NOT met'}"


@dataclass(frozen=True)
class Row:
    """One figure: what we measured, the reference measured in the same run, and their ratio.

    ``ratio`` is ``value / reference_value``; the table's notes say which way is better.
    """

    measure: str
    value: float
    unit: str
    reference: str
    reference_value: float
    note: str = ""
    goal: Goal | None = None

    @property
    def ratio(self) -> float:
        """``value / reference_value`` (inf when the reference is 0)."""
        return self.value / self.reference_value if self.reference_value else math.inf


@dataclass(frozen=True)
class Table:
    """One benchmark's rows, with how they were measured."""

    title: str
    setup: str
    rows: list[Row]
    notes: list[str] = field(default_factory=list)


def progress(message: str) -> None:
    """A progress line on stderr, with the seconds since the suite started."""
    print(f"[{time.monotonic() - _STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)


def _number(value: float) -> str:
    if math.isinf(value):
        return "inf"
    if float(value).is_integer():
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def spread(values: list[float], reference: list[float] | None = None) -> str:
    """A note on the runs behind medians: ``3 runs: 240 to 260 vs 4,700 to 4,900``."""

    def span(of: list[float]) -> str:
        low, high = min(of), max(of)
        return _number(low) if low == high else f"{_number(low)} to {_number(high)}"

    text = f"{len(values)} runs: {span(values)}"
    return f"{text} vs {span(reference)}" if reference else text


def _cells(row: Row) -> list[str]:
    return [
        row.measure,
        f"{_number(row.value)} {row.unit}",
        row.reference,
        f"{_number(row.reference_value)} {row.unit}",
        f"{row.ratio:.2f}",
        row.goal.verdict(row.ratio) if row.goal else "",
        row.note,
    ]


HEADERS = ["measure", "value", "reference", "reference value", "ratio", "goal", "note"]


def as_text(table: Table) -> str:
    """The table for a terminal: aligned columns, setup and notes below."""
    cells = [HEADERS, *(_cells(row) for row in table.rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(HEADERS))]
    lines = [f"== {table.title}", table.setup]
    for line in cells:
        lines.append("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    lines += [f"  * {note}" for note in table.notes]
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def as_markdown(table: Table) -> str:
    """The table as a Markdown section."""
    lines = [f"## {table.title}", "", table.setup, ""]
    lines.append("| " + " | ".join(HEADERS) + " |")
    lines.append("|" + "|".join(["---", "--:", "---", "--:", "--:", "---", "---"]) + "|")
    lines += ["| " + " | ".join(_md(c) for c in _cells(row)) + " |" for row in table.rows]
    if table.notes:
        lines.append("")
        lines += [f"* {note}" for note in table.notes]
    return "\n".join(lines)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError):
        pass
    return "unknown"


def _os() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return f"{line.split('=', 1)[1].strip(chr(34))}, Linux {platform.release()}"
    except OSError:
        pass
    return platform.platform()


def _redis_version() -> str:
    try:
        out = subprocess.run(
            [find_redis_server(), "--version"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    words = [w for w in out.split() if w.startswith("v=")]
    return words[0][2:] if words else out.strip()


def machine() -> list[tuple[str, str]]:
    """What the figures depend on: hardware, OS, Python, the libraries and Redis."""
    libs = ", ".join(
        f"{name} {metadata.version(name)}"
        for name in ("celery", "kombu", "redis", "httpx", "httpcore", "aiohttp", "uvicorn")
    )
    return [
        ("CPU", _cpu_model()),
        ("cores", str(os.cpu_count())),
        ("memory", _memory()),
        ("OS", _os()),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("libraries", libs),
        ("redis-server", _redis_version()),
        ("date", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
    ]


def document(tables: list[Table], *, total_s: float, intro: list[str]) -> str:
    """BENCHMARKS.md: the machine, the command, then one section per benchmark."""
    lines = ["# Benchmarks", "", "Generated by `make bench`; do not edit by hand.", ""]
    lines += intro
    lines += ["", "## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {name} | {_md(value)} |" for name, value in machine()]
    lines += ["", "## Reproduce", "", "```bash", COMMAND, "```", ""]
    lines.append(f"The whole suite took {total_s:.0f} s on this machine.")
    for table in tables:
        lines += ["", as_markdown(table)]
    return "\n".join(lines) + "\n"


Benchmark = Callable[[str, Path], list["Table"]]


def on_fresh_redis(name: str, benchmark: Benchmark) -> list[Table]:
    """Run one benchmark on a redis-server of its own, stopped whatever happens."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        server = RedisServer(Path(tmp)).wait_ready()
        try:
            return benchmark(server.url, Path(tmp))
        finally:
            server.stop()


def print_alone(name: str, benchmark: Benchmark) -> int:
    """Run one benchmark by itself (its module's ``main``) and print its tables."""
    for table in on_fresh_redis(name, benchmark):
        print(as_text(table))
    return 0
