"""The calls of a configured creation (taurus-api.md section 8), over :class:`TaurusClient`.

1. the configuration call, which creates the task without a job id:
   ``POST .../replication/table-config-check`` with ``is_create_task`` "true" when the request
   has table configs, else ``POST .../replication/database-config-check``; the check bodies
   name the databases ``source_database_name`` / ``target_database_name``;
2. the configuration read back (``TaurusClient.get_configuration``): its
   ``last_error_of_alter_table``, its ``database_info`` in either spelling (the live service
   answers camelCase keys, the SDK documents snake_case);
3. ``DELETE .../replication`` with a JSON body ``{task_name}`` when that error is set
   (``DBS.05000091``: already deleted, which is what was asked);
4. the start: the plain create call (``TaurusClient.create_replication``), which must answer
   a ``job_id``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from htap_sync.common.errors import Rejected
from htap_sync.common.models import ReplicationRequest
from htap_sync.worker.api.client import TaurusClient, replication_path

ALREADY_DELETED = "DBS.05000091"  # DELETE of a task that is not there
# What a selection without table_repl_config syncs: every table (as a plain task does).
ALL_TABLES: dict[str, Any] = {"repl_type": "exclude_tables", "repl_scope": "all", "tables": []}
_OK_RESULTS = frozenset({"success"})


@dataclass(frozen=True)
class Checked:
    """The configuration call's answer: the task's name and each check that did not pass."""

    task_name: str
    failed: tuple[str, ...]
    raw: dict[str, Any]


def check_kind(request: ReplicationRequest) -> str:
    """``table`` when the request configures tables, else ``database``."""
    return "table" if request.tables_configs else "database"


def check_body(request: ReplicationRequest) -> dict[str, Any]:
    """The body of the configuration call of a configured request."""
    body: dict[str, Any] = {
        "source_instance_id": request.source_instance_id,
        "source_database_name": request.source_database,
        "target_database_name": request.target_database,
        "task_name": request.task_name,
    }
    if request.source_node_id is not None:
        body["source_node_id"] = request.source_node_id
    selection = request.selection()
    body["table_repl_config"] = selection.pop("table_repl_config", ALL_TABLES)
    body.update(selection)
    if check_kind(request) == "table":
        body["is_create_task"] = "true"
    return body


def configure(client: TaurusClient, request: ReplicationRequest) -> Checked:
    """The configuration call: one POST of the table or the database check.

    Raises:
        ApiError: as :meth:`TaurusClient.create_replication` (a 2xx is no Ambiguous here: the
            check answers no job id).
    """
    path = f"{replication_path(request.project_id, request.instance_id)}"
    path += f"/{check_kind(request)}-config-check"
    answer = client.send_json("POST", path, check_body(request))
    return Checked(str(answer.get("task_name") or request.task_name), failed_checks(answer), answer)


def failed_checks(answer: dict[str, Any]) -> tuple[str, ...]:
    """Each check result of a check's answer that is not a success, as ``where: result``."""
    found: list[str] = []
    for key, name in (
        ("source_db_config_check_results", "param_name"),
        ("target_db_config_check_results", "param_name"),
        ("tbl_config_check_results", "table_name"),
    ):
        results = answer.get(key)
        for result in results if isinstance(results, list) else []:
            if not isinstance(result, dict):
                continue
            outcome = str(result.get("check_result", "")).lower()
            if outcome and outcome not in _OK_RESULTS:
                found.append(f"{key[:-8]} {result.get(name, '?')}: {outcome}")
    return tuple(found)


def alter_error(configuration: dict[str, Any]) -> str:
    """The configuration's ``last_error_of_alter_table`` ('' when none)."""
    value = configuration.get("last_error_of_alter_table")
    return str(value).strip() if value else ""


def database_info(configuration: dict[str, Any]) -> dict[str, Any]:
    """``database_info`` with snake_case keys, whichever spelling the answer used
    (``databaseName`` / ``database_name``, ``dbCfgCheckResults`` / ``db_config_check_results``)."""
    info = configuration.get("database_info")
    if not isinstance(info, dict):
        return {}
    name = info.get("database_name", info.get("databaseName"))
    results = info.get("db_config_check_results", info.get("dbCfgCheckResults"))
    return {"database_name": name, "db_config_check_results": results or []}


def delete_task(client: TaurusClient, project_id: str, instance_id: str, task_name: str) -> bool:
    """``DELETE .../replication`` with ``{task_name}``: True when deleted now, False when it
    was not there (``DBS.05000091``).

    Raises:
        ApiError: any other failure.
    """
    path = replication_path(project_id, instance_id)
    try:
        client.send_json("DELETE", path, {"task_name": task_name})
    except Rejected as exc:
        if exc.error_code == ALREADY_DELETED:
            return False
        raise
    return True
