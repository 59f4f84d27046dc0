"""The calls of a configured creation as they go on the wire (httpx.MockTransport): the check's
path and body, the DELETE with a JSON body, both spellings of ``database_info``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from htap_sync.common.errors import Rejected, ServerError
from htap_sync.common.models import parse_request
from htap_sync.worker.api.client import TaurusClient
from htap_sync.worker.api.configure_calls import (
    ALL_TABLES,
    alter_error,
    check_body,
    configure,
    database_info,
    delete_task,
    failed_checks,
)
from tests.conftest import request_data
from tests.unit.test_models_selection import SELECTION

BASE = "https://taurus.invalid"
PREFIX = (
    "/v3/0123456789abcdef0123456789abcdef/instances/0f1e2d3c4b5a69788796a5b4c3d2e1f0in17"
    "/starrocks/databases/replication"
)


def _client(
    answer: Callable[[httpx.Request], httpx.Response], seen: list[httpx.Request]
) -> TaurusClient:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(request)

    return TaurusClient(httpx.Client(base_url=BASE, transport=httpx.MockTransport(handler)))


def _ok(body: dict[str, Any]) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(200, json=body)


def test_table_configs_take_the_table_check_with_is_create_task() -> None:
    """POST table-config-check; the databases are named *_database_name; the selection is
    sent as given, with is_create_task "true"."""
    seen: list[httpx.Request] = []
    request = parse_request({**request_data(), **SELECTION})
    answer = {"task_name": request.task_name, "tbl_config_check_results": []}
    checked = configure(_client(_ok(answer), seen), request)
    assert checked.task_name == request.task_name and checked.failed == ()
    (sent,) = seen
    assert (sent.method, sent.url.path) == ("POST", f"{PREFIX}/table-config-check")
    assert sent.headers["Content-Type"] == "application/json;charset=utf-8"
    assert json.loads(sent.content) == {
        "source_instance_id": request.source_instance_id,
        "source_database_name": "src_db",
        "target_database_name": "tgt_db",
        "task_name": request.task_name,
        **SELECTION,
        "is_create_task": "true",
    }


def test_without_table_configs_the_database_check_and_all_tables_by_default() -> None:
    """No tables_configs: the database check; no table_repl_config: every table."""
    seen: list[httpx.Request] = []
    request = parse_request({**request_data(), "db_configs": SELECTION["db_configs"]})
    configure(_client(_ok({"task_name": request.task_name}), seen), request)
    assert seen[0].url.path == f"{PREFIX}/database-config-check"
    body = json.loads(seen[0].content)
    assert body["table_repl_config"] == ALL_TABLES and "is_create_task" not in body
    assert check_body(request) == body


def test_a_check_error_is_classified_as_a_create_error() -> None:
    """A 500 from the check is ambiguous (it may have created the task)."""
    failing = lambda request: httpx.Response(  # noqa: E731
        500, json={"error_code": "DBS.108000", "error_msg": "Internal server error."}
    )
    request = parse_request({**request_data(), **SELECTION})
    with pytest.raises(ServerError):
        configure(_client(failing, []), request)


def test_failed_check_results_are_named() -> None:
    """Each result that is not a success, by its parameter or table."""
    answer = {
        "source_db_config_check_results": [
            {"param_name": "a", "value": "1", "check_result": "success"},
            {"param_name": "b", "value": "1", "check_result": "fail"},
        ],
        "tbl_config_check_results": [{"table_name": "t1", "check_result": "failed"}],
    }
    assert failed_checks(answer) == (
        "source_db_config_check b: fail",
        "tbl_config_check t1: failed",
    )


def test_database_info_is_read_in_both_spellings() -> None:
    """The live camelCase keys and the SDK's snake_case ones give the same answer."""
    results = [{"param_name": "a", "value": "1", "check_result": "success"}]
    live = {"database_info": {"databaseName": "src_db", "dbCfgCheckResults": results}}
    sdk = {"database_info": {"database_name": "src_db", "db_config_check_results": results}}
    assert (
        database_info(live)
        == database_info(sdk)
        == {
            "database_name": "src_db",
            "db_config_check_results": results,
        }
    )
    assert database_info({}) == {}
    assert alter_error({"last_error_of_alter_table": " boom "}) == "boom"
    assert alter_error({"last_error_of_alter_table": ""}) == ""


def test_delete_sends_the_task_name_in_a_json_body() -> None:
    """DELETE .../replication {task_name}; DBS.05000091 means it was not there."""
    seen: list[httpx.Request] = []
    client = _client(_ok({"job_id": "j1"}), seen)
    assert delete_task(client, "0123456789abcdef0123456789abcdef", PREFIX.split("/")[4], "t_1")
    assert (seen[0].method, seen[0].url.path) == ("DELETE", PREFIX)
    assert json.loads(seen[0].content) == {"task_name": "t_1"}
    gone = lambda request: httpx.Response(  # noqa: E731
        400, json={"error_code": "DBS.05000091", "error_msg": "The task does not exist."}
    )
    assert not delete_task(_client(gone, []), "0" * 32, "i" * 36, "t_1")
    refused = lambda request: httpx.Response(  # noqa: E731
        400, json={"error_code": "DBS.280001", "error_msg": "Invalid parameter."}
    )
    with pytest.raises(Rejected):
        delete_task(_client(refused, []), "0" * 32, "i" * 36, "t_1")
