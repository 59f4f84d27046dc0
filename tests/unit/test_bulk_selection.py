"""Bulk files carry the selection: JSON Lines rows with JSON values, CSV rows with JSON-valued
cells; a bad cell makes its row invalid, naming the line and the field."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from htap_sync.common.errors import RequestInvalid
from htap_sync.common.models import parse_request
from htap_sync.producer.bulk_file import COLUMNS, BulkFileError, check_file, read_rows
from tests.conftest import VALID
from tests.unit.test_models_selection import SELECTION


def _csv(tmp_path: Path, rows: list[dict[str, str]]) -> Path:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    path = tmp_path / "in.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def _cells() -> dict[str, str]:
    """The example selection as CSV cells: JSON for the objects and lists, text otherwise."""
    return {
        **VALID,
        "table_repl_config": json.dumps(SELECTION["table_repl_config"]),
        "tables_configs": json.dumps(SELECTION["tables_configs"]),
        "db_configs": json.dumps(SELECTION["db_configs"]),
        "is_instance_level_sync": "false",
        "database_repl_scope": '"part"',
    }


def test_a_csv_row_with_json_cells_is_the_configured_request(tmp_path: Path) -> None:
    """The header may name the selection's columns; the row validates to the selection."""
    path = _csv(tmp_path, [_cells()])
    assert check_file(path) == "csv"
    (row,) = read_rows(path)
    assert row.errors == [] and row.data is not None
    assert parse_request(row.data).selection() == SELECTION
    assert set(SELECTION) <= set(COLUMNS)


def test_a_csv_cell_that_is_not_json_names_its_line_and_field(tmp_path: Path) -> None:
    """Each bad JSON cell is an error of its field; the row is invalid, the next one fine."""
    bad = {**_cells(), "tables_configs": "[{table_name: t}]", "db_configs": "{"}
    path = _csv(tmp_path, [bad, _cells()])
    first, second = read_rows(path)
    assert (first.line, first.data) == (2, None)
    assert [e["field"] for e in first.errors] == ["tables_configs", "db_configs"]
    assert first.errors[0]["rule"].startswith("not valid JSON")
    assert second.line == 3 and second.errors == []


def test_a_csv_cell_of_the_wrong_shape_is_refused_by_the_rules(tmp_path: Path) -> None:
    """Valid JSON of the wrong shape reaches validation, which names the nested field."""
    wrong = {**_cells(), "table_repl_config": '{"repl_type": "include", "repl_scope": "all"}'}
    (row,) = read_rows(_csv(tmp_path, [wrong]))
    assert row.data is not None
    with pytest.raises(RequestInvalid) as info:
        parse_request(row.data)
    assert [e["field"] for e in info.value.errors] == ["table_repl_config.repl_type"]


def test_a_jsonl_row_carries_the_selection_as_json(tmp_path: Path) -> None:
    """JSON Lines rows take the selection's values as JSON, as the API does."""
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({**VALID, **SELECTION}) + "\n", encoding="utf-8")
    (row,) = read_rows(path)
    assert row.data is not None and parse_request(row.data).selection() == SELECTION


def test_an_unknown_csv_column_is_still_refused(tmp_path: Path) -> None:
    """Only the API's fields are columns."""
    path = _csv(tmp_path, [{**VALID, "tables": "t1"}])
    with pytest.raises(BulkFileError, match="unknown column"):
        check_file(path)


def test_the_readme_s_configured_jsonl_line_is_a_valid_configured_request() -> None:
    """The README's example line validates (with a project) and carries a table selection."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    (line,) = [x for x in readme.splitlines() if x.startswith("{") and "tables_configs" in x]
    request = parse_request({**json.loads(line), "project_id": VALID["project_id"]})
    assert request.configured and request.tables_configs
