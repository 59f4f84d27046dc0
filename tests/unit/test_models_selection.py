"""A request's optional selection (tables, table configs, database parameters, scope): each
rule names its field, the selection is part of the request's identity, and a plain request
serialises exactly as before."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from htap_sync.common.errors import RequestInvalid
from htap_sync.common.models import (
    NESTED_RULES,
    RULES,
    ReplicationRequest,
    TicketState,
    TicketStatus,
    parse_request,
)
from htap_sync.common.tickets.ids import ticket_id
from tests.conftest import VALID

# The provider's documented example of a task on part of a database's tables.
SELECTION: dict[str, Any] = {
    "is_instance_level_sync": "false",
    "database_repl_scope": "part",
    "db_configs": [
        {"param_name": "binlog_expire_logs_seconds", "value": "0"},
        {"param_name": "max_full_sync_task_threads_num", "value": "4"},
    ],
    "table_repl_config": {
        "repl_type": "include_tables",
        "repl_scope": "part",
        "tables": ["tenant", "tenant_db"],
    },
    "tables_configs": [
        {"table_name": "tenant", "table_config": "order by tenant_name;key columns tenant_name"},
        {"table_name": "tenant_db", "table_config": "order by tenant_name,db_name"},
    ],
}


def configured(**changes: Any) -> dict[str, Any]:
    """A valid request with the example selection, some of its fields replaced."""
    return {**VALID, **SELECTION, **changes}


def _errors(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(RequestInvalid) as info:
        parse_request(data)
    return {e["field"]: e["rule"] for e in info.value.errors}


def test_a_selection_validates_and_keeps_its_values() -> None:
    """The example selection validates; the request says it is configured and hands it back."""
    request = parse_request(configured())
    assert request.configured
    assert request.selection() == SELECTION
    assert request.model_dump(exclude_none=True) == configured()
    # The create call's body stays the one of section 1: the selection goes to the checks.
    assert set(request.body()) == {
        "source_instance_id",
        "source_database",
        "target_database",
        "task_name",
    }


def test_tables_may_be_left_out_and_values_may_be_one_character() -> None:
    """repl_scope all needs no tables; a db_config value of one character ("0") is valid."""
    request = parse_request(
        configured(
            table_repl_config={"repl_type": "exclude_tables", "repl_scope": "all"},
            db_configs=[{"param_name": "binlog_expire_logs_seconds", "value": "0"}],
        )
    )
    assert request.table_repl_config is not None
    assert request.table_repl_config.tables == []


@pytest.mark.parametrize(
    ("changes", "field", "path"),
    [
        ({"is_instance_level_sync": "yes"}, "is_instance_level_sync", None),
        ({"is_instance_level_sync": True}, "is_instance_level_sync", None),
        ({"database_repl_scope": "ALL"}, "database_repl_scope", None),
        (
            {"table_repl_config": {"repl_type": "include", "repl_scope": "all"}},
            "table_repl_config.repl_type",
            "table_repl_config.repl_type",
        ),
        (
            {"table_repl_config": {"repl_type": "include_tables", "repl_scope": "some"}},
            "table_repl_config.repl_scope",
            "table_repl_config.repl_scope",
        ),
        (
            {
                "table_repl_config": {
                    "repl_type": "include_tables",
                    "repl_scope": "part",
                    "tables": ["ok", "bad name"],
                }
            },
            "table_repl_config.tables[1]",
            "table_repl_config.tables",
        ),
        (
            {"tables_configs": [{"table_name": "t" * 65, "table_config": "order by a"}]},
            "tables_configs[0].table_name",
            "tables_configs.table_name",
        ),
        (
            {"tables_configs": [{"table_name": "表", "table_config": "order by a"}]},
            "tables_configs[0].table_name",
            "tables_configs.table_name",
        ),
        (
            {"tables_configs": [{"table_name": "t1", "table_config": ""}]},
            "tables_configs[0].table_config",
            "tables_configs.table_config",
        ),
        (
            {
                "db_configs": [
                    {"param_name": "ok_name", "value": "1"},
                    {"param_name": "x-y", "value": "1"},
                ]
            },
            "db_configs[1].param_name",
            "db_configs.param_name",
        ),
        (
            {"db_configs": [{"param_name": "binlog_expire_logs_seconds", "value": ""}]},
            "db_configs[0].value",
            "db_configs.value",
        ),
    ],
)
def test_each_selection_rule_names_its_field(
    changes: dict[str, Any], field: str, path: str | None
) -> None:
    """A value breaking a rule of the selection is refused naming that field (with its index)."""
    rule = RULES[field] if path is None else NESTED_RULES[path]
    assert _errors(configured(**changes)) == {field: rule}


def test_shapes_unknown_and_missing_fields_of_the_selection() -> None:
    """Wrong shapes, unknown keys and missing keys each get their own error."""
    errors = _errors(
        configured(
            table_repl_config={"repl_type": "include_tables", "tables": "t1", "extra": 1},
            tables_configs={"table_name": "t1"},
            db_configs=[{"param_name": "a1"}, "text", {"param_name": "a2", "value": 0}],
        )
    )
    assert errors == {
        "table_repl_config.repl_scope": "required",
        "table_repl_config.tables": "must be a list",
        "table_repl_config.extra": "unknown field",
        "tables_configs": "must be a list",
        "db_configs[0].value": "required",
        "db_configs[1]": "must be an object",
        "db_configs[2].value": "must be a string",
    }


def test_a_plain_request_serialises_as_before() -> None:
    """Without a selection, every dump and the fingerprint are the texts of before the selection
    existed (no new keys, not even as null)."""
    request = parse_request(VALID)
    assert not request.configured and request.selection() == {}
    assert request.model_dump_json() == (
        '{"project_id":"0123456789abcdef0123456789abcdef",'
        '"instance_id":"0f1e2d3c4b5a69788796a5b4c3d2e1f0in17",'
        '"source_instance_id":"1a2b3c4d5e6f708192a3b4c5d6e7f809in07","source_node_id":null,'
        '"source_database":"src_db","target_database":"tgt_db","task_name":"task_orders_001"}'
    )
    assert request.fingerprint() == json.dumps(VALID, sort_keys=True, separators=(",", ":"))
    now = datetime(2026, 12, 4, tzinfo=UTC)
    status = TicketStatus(
        ticket="t", state=TicketState.QUEUED, request=request, created_at=now, updated_at=now
    )
    assert set(status.to_json()["request"]) == {*VALID, "source_node_id"}


def test_the_selection_is_in_the_fingerprint_not_in_the_ticket_id() -> None:
    """Same task name, other selection: the same ticket id, another fingerprint (a conflict)."""
    plain, full = parse_request(VALID), parse_request(configured())
    other = parse_request(
        configured(table_repl_config={"repl_type": "exclude_tables", "repl_scope": "all"})
    )
    fingerprints = {r.fingerprint() for r in (plain, full, other)}
    assert len(fingerprints) == 3
    ids = {ticket_id(r.project_id, r.instance_id, r.task_name) for r in (plain, full, other)}
    assert len(ids) == 1
    assert parse_request(configured()).fingerprint() == full.fingerprint()
    # Key order inside the selection does not matter; the fingerprint is canonical.
    shuffled = configured(table_repl_config=dict(reversed(SELECTION["table_repl_config"].items())))
    assert parse_request(shuffled).fingerprint() == full.fingerprint()


def test_a_configured_request_round_trips_through_its_stored_and_queued_forms() -> None:
    """The fingerprint (what the store keeps) and the message's dict validate back unchanged."""
    request = parse_request(configured())
    assert ReplicationRequest.model_validate_json(request.fingerprint()) == request
    assert parse_request(request.model_dump(exclude_none=True)) == request


def test_the_json_schema_offers_the_selection_with_its_enums() -> None:
    """The request's JSON Schema (the ingress's NewReplication) carries the enums and patterns."""
    schema = ReplicationRequest.model_json_schema()
    assert set(schema["properties"]) == set(RULES)
    repl = schema["$defs"]["TableReplConfig"]["properties"]
    assert repl["repl_type"]["enum"] == ["include_tables", "exclude_tables"]
    assert repl["repl_scope"]["enum"] == ["all", "part"]
    assert schema["$defs"]["DbConfig"]["properties"]["value"]["minLength"] == 1
