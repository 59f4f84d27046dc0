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
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            return
        names = [name.strip() for name in header]
        repeated = sorted({n for n in names if names.count(n) > 1})
        line = reader.line_num
        for cells in reader:
            start, line = line + 1, reader.line_num
            if all(cell == "" for cell in cells):
                continue  # a blank line
            if repeated:
                yield Row(start, None, [_error("header", f"repeats {', '.join(repeated)}")])
            elif len(cells) > len(names):
                yield Row(start, None, [_error("row", "more cells than the header has columns")])
            else:
                yield Row(start, _compact(dict(zip(names, cells, strict=False))))


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
