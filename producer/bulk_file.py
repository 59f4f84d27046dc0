"""Reads bulk files row by row: CSV with a header row, or JSON Lines. Never loads the whole file.

Each row keeps its line number, so every error can say where it is. A row that cannot be read
(bad JSON, too many cells, not an object) becomes a row with errors; it never stops the others.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from htap_sync.common.errors import HtapSyncError
from htap_sync.common.models import BODY_FIELDS, ROUTING_FIELDS, SELECTION_FIELDS

Format = Literal["csv", "jsonl"]
_SUFFIXES: dict[str, Format] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass(frozen=True)
class Row:
    """One input row: its data, or why it could not be read."""

    line: int
    data: dict[str, Any] | None
    errors: list[dict[str, str]] = field(default_factory=list)


def _error(field_name: str, rule: str) -> dict[str, str]:
    return {"field": field_name, "rule": rule, "message": f"{field_name}: {rule}"}


class BulkFileError(HtapSyncError):
    """A bulk file that cannot be read as a whole (empty, not UTF-8 text, a wrong header).

    Checked before anything is queued, so a bad file queues nothing.
    """


# Columns a CSV header may name; the required ones (project_id only without a default).
COLUMNS = ("project_id", "instance_id", *BODY_FIELDS, *SELECTION_FIELDS, *ROUTING_FIELDS)
# The selection's cells that hold JSON (an object or a list) in a CSV file; the two others
# are plain text (``true``, ``part``), a JSON string (``"true"``) read as the same.
JSON_COLUMNS = ("table_repl_config", "tables_configs", "db_configs")
REQUIRED = ("instance_id", "source_instance_id", "source_database", "target_database", "task_name")
# A cell may be this large (csv's own limit is 128 KiB); the rules then refuse it by name.
MAX_FIELD_CHARS = 64 * 1024 * 1024
_SNIFF_BYTES = 64 * 1024
_BOMS = {
    b"\xff\xfe\x00\x00": "UTF-32",
    b"\x00\x00\xfe\xff": "UTF-32",
    b"\xff\xfe": "UTF-16",
    b"\xfe\xff": "UTF-16",
}


def check_file(path: Path, fmt: Format | None = None, *, project_default: bool = False) -> Format:
    """Check a bulk file as a whole before any row is queued; return its format.

    Raises:
        BulkFileError: the file is empty (or blank), is not UTF-8 text (UTF-16 or UTF-32 with
            or without a byte order mark, binary), has no row, or (CSV) its header lacks a
            required column or names an unknown one.
    """
    with path.open("rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    if not head.strip():
        raise BulkFileError(f"{path.name}: the file is empty")
    for bom, name in _BOMS.items():
        if head.startswith(bom):
            raise BulkFileError(f"{path.name}: the file is {name} text; save it as UTF-8")
    if b"\x00" in head:
        raise BulkFileError(
            f"{path.name}: the file holds NUL bytes: binary, or UTF-16/UTF-32 text without a"
            " byte order mark; save it as UTF-8"
        )
    # A stray bad byte is the one cell's error (decoded as U+FFFD, it fails that field's rule);
    # a sample full of them is not UTF-8 text at all.
    text = head.decode("utf-8", errors="replace")
    if text.count("\ufffd") > max(8, len(text) // 100):
        raise BulkFileError(f"{path.name}: not UTF-8 text; save it as UTF-8")
    fmt = fmt or detect_format(path)
    if fmt == "csv":
        _check_header(path, project_default=project_default)
    return fmt


def _check_header(path: Path, *, project_default: bool) -> None:
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        names = [name.strip() for name in header]
        unknown = [n for n in names if n not in COLUMNS]
        required = REQUIRED if project_default else ("project_id", *REQUIRED)
        missing = [n for n in required if n not in names]
        if unknown or missing:
            parts = [f"unknown column(s) {', '.join(unknown)}"] if unknown else []
            parts += [f"missing column(s) {', '.join(missing)}"] if missing else []
            raise BulkFileError(
                f"{path.name}: header: {'; '.join(parts)} (columns: {', '.join(COLUMNS)})"
            )
        csv.field_size_limit(max(csv.field_size_limit(), MAX_FIELD_CHARS))
        try:
            has_row = any(any(cell.strip() for cell in cells) for cells in reader)
        except csv.Error:
            has_row = True  # a row is there, if broken: reported on its line
        if not has_row:
            raise BulkFileError(f"{path.name}: a header but no rows")


def detect_format(path: Path) -> Format:
    """The format by suffix (``.csv``, ``.jsonl``, ``.ndjson``), else by the first character."""
    by_suffix = _SUFFIXES.get(path.suffix.lower())
    if by_suffix:
        return by_suffix
    with path.open("rb") as handle:
        for raw in handle:
            text = raw.strip().lstrip(b"\xef\xbb\xbf")
            if text:
                return "jsonl" if text.startswith(b"{") else "csv"
    return "csv"


def read_rows(path: Path, fmt: Format | None = None) -> Iterator[Row]:
    """Rows of a bulk file, lazily, in file order.

    Empty CSV cells and JSON nulls count as absent, so a missing required field reads
    "required" and an empty optional one (``source_node_id``) means the primary node.
    """
    fmt = fmt or detect_format(path)
    if fmt == "csv":
        yield from _csv_rows(path)
    else:
        yield from _jsonl_rows(path)


def _compact(data: dict[Any, Any]) -> dict[str, Any]:
    return {str(k).strip(): v for k, v in data.items() if v is not None and v != ""}


def _csv_rows(path: Path) -> Iterator[Row]:
    # errors="replace": a bad byte becomes U+FFFD, which then fails the field's alphabet rule,
    # so the error names the field instead of aborting the file.
    csv.field_size_limit(max(csv.field_size_limit(), MAX_FIELD_CHARS))
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            return
        names = [name.strip() for name in header]
        repeated = sorted({n for n in names if names.count(n) > 1})
        line = reader.line_num
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                # A broken row (a cell beyond MAX_FIELD_CHARS...) is one invalid row; reading
                # goes on after it, so it never stops the rows that follow.
                start, line = line + 1, reader.line_num
                yield Row(start, None, [_error("row", f"unreadable CSV ({exc})")])
                continue
            start, line = line + 1, reader.line_num
            if all(cell == "" for cell in cells):
                continue  # a blank line
            if repeated:
                yield Row(start, None, [_error("header", f"repeats {', '.join(repeated)}")])
            elif len(cells) > len(names):
                yield Row(start, None, [_error("row", "more cells than the header has columns")])
            else:
                yield _decoded(start, _compact(dict(zip(names, cells, strict=False))))


def _decoded(line: int, data: dict[str, Any]) -> Row:
    """A CSV row whose selection cells are read as JSON; a cell that is not valid JSON makes
    the row invalid, naming its field."""
    errors = []
    for name in (*JSON_COLUMNS, "is_instance_level_sync", "database_repl_scope"):
        text = data.get(name)
        if not isinstance(text, str):
            continue
        if name not in JSON_COLUMNS and not text.lstrip().startswith('"'):
            data[name] = text.strip()
            continue
        try:
            data[name] = json.loads(text)
        except json.JSONDecodeError as exc:
            errors.append(_error(name, f"not valid JSON ({exc.msg})"))
        except RecursionError:
            errors.append(_error(name, "JSON nested too deeply"))
    return Row(line, None, errors) if errors else Row(line, data)


def _jsonl_rows(path: Path) -> Iterator[Row]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            text = raw.decode("utf-8", errors="replace").strip().lstrip("\ufeff")
            if not text:
                continue
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                yield Row(number, None, [_error("line", f"not valid JSON ({exc.msg})")])
                continue
            except RecursionError:
                yield Row(number, None, [_error("line", "JSON nested too deeply")])
                continue
            if not isinstance(data, dict):
                yield Row(number, None, [_error("line", "must be a JSON object")])
                continue
            yield Row(number, _compact(data))
