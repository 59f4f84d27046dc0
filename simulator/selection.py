"""Checking the bodies of the configuration calls: the two checks and the modify (PUT).

The three bodies share the SDK's ``DbConfigCheckRequestV3`` / ``TableConfigCheckRequestV3`` /
``ModifyDataSyncConfigRequestV3`` fields (taurus-api.md section 8): the databases are named
``source_database_name`` / ``target_database_name`` (the create call's names with ``_name``),
``table_repl_config`` is required (the provider always sends it), ``db_configs`` and
``tables_configs`` are optional lists. ``is_instance_level_sync`` and ``database_repl_scope``
are absent from the check models but the provider sends them anyway, so every body takes them.
``is_create_task`` belongs to the table check, ``is_support_reg_exp`` to the modify. Every
"boolean" is the string "true" or "false", as on the wire.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from htap_sync.simulator.validation import InvalidParameter, parse_create_body

CheckKind = Literal["database", "table", "modify"]
_TABLE_RE = re.compile(r"[A-Za-z0-9_$]{1,64}")
_PARAM_RE = re.compile(r"[A-Za-z0-9_]{1,128}")
_COMMON = frozenset(
    {
        "source_instance_id",
        "source_node_id",
        "source_database_name",
        "target_database_name",
        "task_name",
        "db_configs",
        "tables_configs",
        "table_repl_config",
        "is_instance_level_sync",
        "database_repl_scope",
    }
)
_FIELDS: dict[CheckKind, frozenset[str]] = {
    "database": _COMMON,
    "table": _COMMON | {"is_create_task"},
    "modify": _COMMON | {"is_support_reg_exp"},
}


@dataclass(frozen=True)
class CheckBody:
    """A valid configuration body (a check's, or the modify's)."""

    source_instance_id: str
    source_node_id: str | None
    source_database_name: str
    target_database_name: str
    task_name: str
    table_repl_config: dict[str, Any]
    db_configs: list[dict[str, str]] = field(default_factory=list)
    tables_configs: list[dict[str, str]] = field(default_factory=list)
    is_instance_level_sync: str = "false"
    database_repl_scope: str = "part"
    is_create_task: bool = False
    is_support_reg_exp: str = "false"


def _choice(
    body: dict[str, Any], name: str, choices: tuple[str, ...], default: str, where: str = ""
) -> str:
    value = body.get(name, default)
    if value not in choices:
        raise InvalidParameter(f"{where}{name}", " or ".join(f'"{c}"' for c in choices))
    return str(value)


def _objects(body: dict[str, Any], name: str, keys: tuple[str, str]) -> list[dict[str, str]]:
    """A list of objects of exactly ``keys``, every value a string."""
    value = body.get(name, [])
    if not isinstance(value, list):
        raise InvalidParameter(name, "must be a list")
    for index, item in enumerate(value):
        where = f"{name}[{index}]"
        if not isinstance(item, dict):
            raise InvalidParameter(where, "must be an object")
        for key in sorted(set(item) - set(keys)):
            raise InvalidParameter(f"{where}.{key}", "unknown field")
        for key in keys:
            if not isinstance(item.get(key), str) or not item[key]:
                raise InvalidParameter(f"{where}.{key}", "required, a non-empty string")
    return [{key: item[key] for key in keys} for item in value]


def _table_repl_config(body: dict[str, Any]) -> dict[str, Any]:
    value = body.get("table_repl_config")
    if value is None:
        raise InvalidParameter("table_repl_config", "required")
    if not isinstance(value, dict):
        raise InvalidParameter("table_repl_config", "must be an object")
    for key in sorted(set(value) - {"repl_type", "repl_scope", "tables"}):
        raise InvalidParameter(f"table_repl_config.{key}", "unknown field")
    where = "table_repl_config."
    repl_type = _choice(value, "repl_type", ("include_tables", "exclude_tables"), "", where)
    repl_scope = _choice(value, "repl_scope", ("all", "part"), "", where)
    tables = value.get("tables") or []
    if not isinstance(tables, list):
        raise InvalidParameter("table_repl_config.tables", "must be a list")
    for index, table in enumerate(tables):
        if not isinstance(table, str) or not _TABLE_RE.fullmatch(table):
            rule = "1 to 64 characters of A-Z, a-z, 0-9, _ and $"
            raise InvalidParameter(f"table_repl_config.tables[{index}]", rule)
    return {"repl_type": repl_type, "repl_scope": repl_scope, "tables": list(tables)}


def _names(body: dict[str, Any]) -> dict[str, Any]:
    """The ids and names, checked by the create call's rules (its names plus ``_name``)."""
    as_create = {
        "source_instance_id": body.get("source_instance_id"),
        "source_node_id": body.get("source_node_id"),
        "source_database": body.get("source_database_name"),
        "target_database": body.get("target_database_name"),
        "task_name": body.get("task_name"),
    }
    try:
        create = parse_create_body(json.dumps(as_create).encode())
    except InvalidParameter as exc:
        renamed = f"{exc.field}_name" if exc.field.endswith("_database") else exc.field
        raise InvalidParameter(renamed, exc.rule) from None
    return {
        "source_instance_id": create.source_instance_id,
        "source_node_id": create.source_node_id,
        "source_database_name": create.source_database,
        "target_database_name": create.target_database,
        "task_name": create.task_name,
    }


def parse_check_body(raw: bytes, kind: CheckKind) -> CheckBody:
    """Parse and check the body of a configuration call of ``kind``."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidParameter("body", "must be a JSON object") from None
    if not isinstance(body, dict):
        raise InvalidParameter("body", "must be a JSON object")
    for name in sorted(set(body) - _FIELDS[kind]):
        raise InvalidParameter(name, "unknown field")
    names = _names(body)
    db_configs = _objects(body, "db_configs", ("param_name", "value"))
    for index, config in enumerate(db_configs):
        if not _PARAM_RE.fullmatch(config["param_name"]):
            rule = "1 to 128 characters of A-Z, a-z, 0-9 and _"
            raise InvalidParameter(f"db_configs[{index}].param_name", rule)
    tables_configs = _objects(body, "tables_configs", ("table_name", "table_config"))
    for index, config in enumerate(tables_configs):
        if not _TABLE_RE.fullmatch(config["table_name"]):
            rule = "1 to 64 characters of A-Z, a-z, 0-9, _ and $"
            raise InvalidParameter(f"tables_configs[{index}].table_name", rule)
    booleans = ("true", "false")
    return CheckBody(
        **names,
        table_repl_config=_table_repl_config(body),
        db_configs=db_configs,
        tables_configs=tables_configs,
        is_instance_level_sync=_choice(body, "is_instance_level_sync", booleans, "false"),
        database_repl_scope=_choice(body, "database_repl_scope", ("all", "part"), "part"),
        is_create_task=_choice(body, "is_create_task", booleans, "false") == "true",
        is_support_reg_exp=_choice(body, "is_support_reg_exp", booleans, "false"),
    )
