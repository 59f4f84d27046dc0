"""The HTTP ingress over real HTTP: /docs, the examples and ranges of its OpenAPI document, the
ticket link on both forms of a POST's answer, request ids and the answer's log line."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from htap_sync.common.logs import TextFormatter
from htap_sync.common.models import parse_request
from tests.integration.ingress.served import (
    MAX_ITEMS,
    REQUEST_ID,
    Served,
    new_replication,
    request_n,
)

LOGGER = "htap_sync.producer.ingress"


def _resolve(document: Any, expression: str) -> Any:
    """The value of a link's ``$response.body#/...`` expression in ``document``."""
    prefix = "$response.body#"
    assert expression.startswith(prefix)
    for part in expression.removeprefix(prefix).strip("/").split("/"):
        document = document[int(part)] if isinstance(document, list) else document[part]
    return document


def test_docs_is_swagger_ui_with_try_it_out(server: Served) -> None:
    """GET /docs (no key): Swagger UI on /openapi.json, try-it-out on, keys kept."""
    with server.client() as c:
        response = c.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert REQUEST_ID.match(response.headers["x-request-id"])
    page = response.text
    assert "SwaggerUIBundle" in page and "swagger-ui" in page
    assert "'/openapi.json'" in page or '"/openapi.json"' in page
    assert '"tryItOutEnabled": true' in page


def test_the_document_has_examples_and_ranges(server: Served) -> None:
    """Example bodies (one object, a list) that the model accepts; ranges of wait_s and lists."""
    with server.client() as c:
        document = c.get("/openapi.json").json()
    post = document["paths"]["/v1/replications"]["post"]
    media = post["requestBody"]["content"]["application/json"]
    assert set(media["examples"]) == {"one", "list"}
    one, many = media["examples"]["one"]["value"], media["examples"]["list"]["value"]
    for example in (one, *many, *new_replication(document)["examples"]):
        parse_request(example)  # raises if the example breaks a rule
    listed = media["schema"]["oneOf"][1]
    assert (listed["minItems"], listed["maxItems"]) == (1, MAX_ITEMS)
    get = document["paths"]["/v1/replications/{ticket}"]["get"]
    params = {p["name"]: p for p in get["parameters"]}
    wait_s = params["wait_s"]["schema"]
    assert (wait_s["minimum"], wait_s["maximum"]) == (0, 60)
    assert params["wait_s"]["in"] == "query" and wait_s["examples"] == [0, 10]
    assert params["until"]["schema"]["enum"] == ["created", "synced"]
    assert params["ticket"]["schema"]["pattern"] == "^tk_[0-9a-f]{32}$"
    assert "examples" in document["components"]["schemas"]["Error"]["properties"]["field"]


def test_the_ticket_link_holds_for_one_object_and_a_list(
    client: httpx.Client, server: Served
) -> None:
    """The 202 and 207 answers' link to GET the ticket finds its ticket in both forms."""
    document = client.get("/openapi.json").json()
    responses = document["paths"]["/v1/replications"]["post"]["responses"]
    answers = {
        "202": [
            client.post("/v1/replications", json=request_n(1)),
            client.post("/v1/replications", json=[request_n(2), request_n(3)]),
        ],
        "207": [client.post("/v1/replications", json=[request_n(4), {"task_name": "x"}])],
    }
    for status, posted in answers.items():
        (link,) = responses[status]["links"].values()
        assert link["operationId"] == "getReplication"
        for response in posted:
            assert response.status_code == int(status), response.text
            ticket = _resolve(response.json(), link["parameters"]["ticket"])
            assert client.get(f"/v1/replications/{ticket}").status_code == 200


@pytest.mark.parametrize("given", ["caller-1f2e3d", "0af7651916cd43dd8448eb211c80319c", "a.b:c"])
def test_a_callers_request_id_is_echoed_and_logged(
    client: httpx.Client, caplog: pytest.LogCaptureFixture, given: str
) -> None:
    """An incoming X-Request-Id that looks like an id comes back unchanged and is logged."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    response = client.post("/v1/replications", json=request_n(1), headers={"X-Request-Id": given})
    assert response.status_code == 202
    assert response.headers["x-request-id"] == given
    lines = [r for r in caplog.records if r.name == LOGGER and r.__dict__.get("route")]
    assert [r.__dict__["request_id"] for r in lines] == [given]


@pytest.mark.parametrize("given", ["", "has space", "x" * 129, "semi;colon", "back\\slash"])
def test_an_unusable_request_id_is_replaced(client: httpx.Client, given: str) -> None:
    """An empty, too long or oddly written X-Request-Id is not echoed: a new id is sent."""
    response = client.get("/healthz", headers={"X-Request-Id": given})
    assert response.headers["x-request-id"] != given
    assert REQUEST_ID.match(response.headers["x-request-id"])


def test_the_answer_log_line_carries_the_ticket(
    client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    """A POST's log line names its ticket (a list's, its counts); a lookup's names its ticket."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    ticket = client.post("/v1/replications", json=request_n(1)).json()["ticket"]
    client.post("/v1/replications", json=[request_n(2), {"task_name": "x"}])
    client.get(f"/v1/replications/{ticket}")
    records = [r for r in caplog.records if r.name == LOGGER and r.__dict__.get("route")]
    lines = [r.__dict__ for r in records]
    assert [(line["method"], line["status"]) for line in lines] == [
        ("POST", 202),
        ("POST", 207),
        ("GET", 200),
    ]
    assert lines[0]["ticket"] == ticket and lines[2]["ticket"] == ticket
    assert (lines[1]["accepted"], lines[1]["rejected"]) == (1, 1)
    assert f"ticket={ticket}" in TextFormatter().format(records[0])  # as text logs show it
