"""The HTTP ingress over real HTTP: invalid requests, bodies that are not JSON or not
objects, and the body-size limit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from htap_sync.common.errors import RequestInvalid
from htap_sync.common.models import NESTED_RULES, RULES, parse_request
from htap_sync.producer.api import Producer
from tests.conftest import VALID
from tests.integration.ingress.served import (
    AUTH,
    KEY,
    MAX_BODY,
    MAX_ITEMS,
    REQUEST_ID,
    Served,
    errors_of,
    request_n,
)


@pytest.mark.parametrize(
    ("changes", "field", "rule"),
    [
        ({"task_name": "a"}, "task_name", RULES["task_name"]),
        ({"instance_id": "short"}, "instance_id", RULES["instance_id"]),
        ({"colour": "blue"}, "colour", "unknown field"),
        ({"source_database": 123}, "source_database", "must be a string"),
        (
            {"tables_configs": [{"table_name": "bad name", "table_config": "order by id"}]},
            "tables_configs[0].table_name",
            NESTED_RULES["tables_configs.table_name"],
        ),
    ],
)
def test_an_invalid_request_answers_422_naming_the_field(
    client: httpx.Client, producer: Producer, changes: dict[str, Any], field: str, rule: str
) -> None:
    """422 with the model's own errors (the CLI's messages); nothing is queued."""
    data = {**VALID, **changes}
    response = client.post("/v1/replications", json=data)
    assert response.status_code == 422
    errors = errors_of(response)
    assert {"field": field, "rule": rule, "message": f"{field}: {rule}"} in errors
    with pytest.raises(RequestInvalid) as expected:
        parse_request(data)
    assert errors == expected.value.errors
    assert producer.queue_depth() == 0


def test_a_configured_request_is_accepted_with_its_selection(client: httpx.Client) -> None:
    """202: the status's request carries the selection as sent."""
    selection = {
        "table_repl_config": {"repl_type": "exclude_tables", "repl_scope": "all", "tables": []},
        "db_configs": [{"param_name": "binlog_expire_logs_seconds", "value": "0"}],
    }
    response = client.post("/v1/replications", json={**VALID, **selection})
    assert response.status_code == 202, response.text
    request = response.json()["request"]
    assert {k: request[k] for k in selection} == selection


def test_a_missing_field_is_named(client: httpx.Client) -> None:
    """A request without task_name answers 422 'task_name: required'."""
    data = {k: v for k, v in VALID.items() if k != "task_name"}
    response = client.post("/v1/replications", json=data)
    assert response.status_code == 422
    assert errors_of(response)[0]["message"] == "task_name: required"


@pytest.mark.parametrize("count", [0, MAX_ITEMS + 1])
def test_an_empty_or_too_long_list_answers_422(
    client: httpx.Client, producer: Producer, count: int
) -> None:
    """A list must hold 1 to HTAP_SYNC_API_MAX_ITEMS requests; otherwise nothing is queued."""
    response = client.post("/v1/replications", json=[request_n(n) for n in range(count)])
    assert response.status_code == 422
    assert errors_of(response)[0]["field"] == "body"
    assert producer.queue_depth() == 0


@pytest.mark.parametrize("body", [b"{not json", b'{"a": 1', b"\xff\xfe\x00", b"[" * 4000])
def test_malformed_json_answers_400(client: httpx.Client, body: bytes) -> None:
    """A body that is not JSON (even absurdly nested) answers 400 naming the body."""
    response = client.post(
        "/v1/replications", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert errors_of(response) == [
        {"field": "body", "rule": "not valid JSON", "message": "body: not valid JSON"}
    ]


@pytest.mark.parametrize("value", ['"text"', "42", "null"])
def test_json_that_is_no_object_answers_422(client: httpx.Client, value: str) -> None:
    """JSON that is neither an object nor a list answers 422."""
    response = client.post(
        "/v1/replications", content=value, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert errors_of(response)[0]["rule"] == "must be an object or a list of objects"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_that_is_not_json_answers_415(server: Served, content_type: str | None) -> None:
    """Only application/json (or a +json type) is read."""
    headers = dict(AUTH)
    if content_type:
        headers["Content-Type"] = content_type
    with server.client(headers) as c:
        response = c.post("/v1/replications", content=json.dumps(VALID).encode())
    assert response.status_code == 415
    assert errors_of(response)[0]["field"] == "Content-Type"


def test_a_body_of_exactly_the_limit_is_read(client: httpx.Client) -> None:
    """The limit is inclusive: a body of exactly HTAP_SYNC_API_MAX_BODY_BYTES is served."""
    text = json.dumps(request_n(1))
    body = text.encode() + b" " * (MAX_BODY - len(text))
    response = client.post(
        "/v1/replications", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 202, response.text


def test_a_declared_oversize_body_is_refused_before_it_is_sent(server: Served) -> None:
    """A Content-Length above the limit answers 413 at once, without waiting for the body."""
    status, headers, body = server.raw(
        "POST /v1/replications HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"X-API-Key: {KEY}\r\nContent-Length: {10**9}"
    )
    assert status == 413
    assert headers["connection"] == "close"
    assert REQUEST_ID.match(headers["x-request-id"])
    assert json.loads(body)["errors"][0]["field"] == "body"


def test_a_streamed_oversize_body_is_refused_while_it_is_read(server: Served) -> None:
    """A chunked body answers 413 once past the limit, though it has not ended."""
    chunk = b"[" + b" " * MAX_BODY
    status, _, body = server.raw(
        "POST /v1/replications HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"X-API-Key: {KEY}\r\nTransfer-Encoding: chunked",
        f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n",  # no final 0-length chunk: still open
    )
    assert status == 413
    assert json.loads(body)["errors"][0]["rule"] == f"at most {MAX_BODY} bytes"


def test_a_chunked_client_gets_a_clean_413(client: httpx.Client) -> None:
    """An ordinary client streaming twice the limit (no Content-Length) reads a 413."""

    def chunks() -> Iterator[bytes]:
        yield b"["
        for _ in range(8):
            yield b" " * (MAX_BODY // 4)
        yield b"]"

    response = client.post(
        "/v1/replications", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
