"""What the configuration calls answer: check results, the parameter catalogue, a task's
configuration (taurus-api.md section 8).

The catalogue (``database-parameters``) holds the two parameters the provider's documentation
sets (``binlog_expire_logs_seconds`` "0", ``max_full_sync_task_threads_num`` "4"); their
types, defaults, ranges and descriptions, and the third parameter, are the simulator's own.

How a check decides is not documented; the simulator's rules are:

- a ``db_configs`` entry is ``success`` when the catalogue knows its name and its value is an
  integer in the parameter's range, else ``fail``;
- a ``tables_configs`` entry is ``success`` when ``table_repl_config`` syncs its table (scope
  all; or part, with the table listed for include_tables, not listed for exclude_tables), else
  ``failed`` (configuring a table that is not synced);
- a check with any result not a success creates nothing (``creates`` below).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from htap_sync.simulator.selection import CheckBody
from htap_sync.simulator.state import Task


@dataclass(frozen=True)
class Parameter:
    """One row of the ``database-parameters`` catalogue."""

    param_name: str
    data_type: str
    default_value: str
    low: int
    high: int
    description: str
    is_modifiable: str = "true"

    def row(self) -> dict[str, str]:
        """The row as the route answers it."""
        return {
            "param_name": self.param_name,
            "data_type": self.data_type,
            "default_value": self.default_value,
            "value_range": f"{self.low}-{self.high}",
            "description": self.description,
            "is_modifiable": self.is_modifiable,
        }

    def accepts(self, value: str) -> bool:
        """True for an integer text within the range."""
        return value.isdigit() and self.low <= int(value) <= self.high


PARAMETERS: tuple[Parameter, ...] = (
    Parameter(
        "binlog_expire_logs_seconds",
        "integer",
        "0",
        0,
        4_294_967_295,
        "Seconds the source keeps binlogs for this task (0: the source's own setting).",
    ),
    Parameter(
        "max_full_sync_task_threads_num",
        "integer",
        "4",
        1,
        64,
        "Threads of the full synchronization.",
    ),
    Parameter(
        "max_incremental_sync_task_threads_num",
        "integer",
        "4",
        1,
        64,
        "Threads of the incremental synchronization.",
        is_modifiable="false",
    ),
)
_BY_NAME = {parameter.param_name: parameter for parameter in PARAMETERS}


def db_results(body: CheckBody) -> list[dict[str, str]]:
    """``{param_name, value, check_result}`` of each ``db_configs`` entry: success or fail."""
    results = []
    for config in body.db_configs:
        known = _BY_NAME.get(config["param_name"])
        ok = known is not None and known.accepts(config["value"])
        results.append({**config, "check_result": "success" if ok else "fail"})
    return results


def synced(body: CheckBody, table: str) -> bool:
    """Whether the body's ``table_repl_config`` syncs ``table``."""
    repl = body.table_repl_config
    if repl["repl_scope"] == "all":
        return True
    listed = table in repl["tables"]
    return listed if repl["repl_type"] == "include_tables" else not listed


def table_results(body: CheckBody) -> list[dict[str, str]]:
    """``{table_name, table_config, check_result}`` of each ``tables_configs`` entry."""
    return [
        {**config, "check_result": "success" if synced(body, config["table_name"]) else "failed"}
        for config in body.tables_configs
    ]


def creates(body: CheckBody) -> bool:
    """Whether every check result of the body is a success (else nothing is created)."""
    results = db_results(body) + table_results(body)
    return all(result["check_result"] == "success" for result in results)


def check_answer(body: CheckBody, kind: str) -> dict[str, Any]:
    """The answer of a check (``CheckDataBaseConfigResponse`` / ``CheckTableConfigResponse``)."""
    names = {
        "source_database_name": body.source_database_name,
        "target_database_name": body.target_database_name,
    }
    if kind == "table":
        return {
            **names,
            "tbl_config_check_results": table_results(body),
            "task_name": body.task_name,
        }
    return {
        **names,
        "source_db_config_check_results": db_results(body),
        "target_db_config_check_results": [],
        "task_name": body.task_name,
    }


def configuration(task: Task, alter_error: str) -> dict[str, Any]:
    """The configuration call's answer for a task.

    ``database_info`` carries the live service's camelCase keys (``databaseName``,
    ``dbCfgCheckResults``), as the provider reads them; the SDK documents ``database_name`` /
    ``db_config_check_results``, so the SDK's ``database_info`` is empty against the simulator
    as against the live service. A plain task (created by the create call alone) shows all its
    tables, no parameters and no table configs.
    """
    check = task.check
    default = {"repl_type": "exclude_tables", "repl_scope": "all", "tables": []}
    tables = check.table_repl_config if check else default
    return {
        "source_instance_id": task.source_instance_id,
        "source_node_id": task.source_node_id or "",
        "database_info": {
            "databaseName": task.source_database,
            "dbCfgCheckResults": db_results(check) if check else [],
        },
        "table_infos": table_results(check) if check else [],
        "table_repl_config": tables,
        "new_table_repl_config": tables,
        "target_database_name": task.target_database,
        "is_tables_change": task.tables_changed,
        "last_error_of_alter_table": alter_error,
        "is_instance_level_sync": check.is_instance_level_sync if check else "false",
        "database_repl_scope": check.database_repl_scope if check else "part",
        "is_support_reg_exp": check.is_support_reg_exp if check else "false",
    }
