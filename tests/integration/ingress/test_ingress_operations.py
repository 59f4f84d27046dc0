"""The operation routes of the HTTP ingress over real HTTP, Redis and a worker: pause by tickets
and resume by instance, done as the service shows it; modify; per-task results and statuses;
bad bodies name their field; the routes are in the OpenAPI document."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from htap_sync.common.models import TicketState
from htap_sync.producer.api import Producer
from tests.conftest import VALID
from tests.integration.conftest import WorkerFactory
from tests.integration.harness import wait_for
from tests.integration.ingress.served import (
    KEY,
    MAX_BODY,
    MAX_ITEMS,
    SECOND_KEY,
    errors_of,
    request_n,
)

SELECTION: dict[str, Any] = {
    "table_repl_config": {"repl_type": "exclude_tables", "repl_scope": "all", "tables": []}
}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """The ingress tests' keys and limits; operations look again every 0.3 s."""
    return {
        "api_keys": f"{KEY}, {SECOND_KEY}",
        "api_max_body_bytes": MAX_BODY,
        "api_max_items": MAX_ITEMS,
        "follow_interval_s": 0.3,
    }


def _created(producer: Producer, worker: WorkerFactory, count: int) -> list[str]:
    tickets = [producer.enqueue({**request_n(n), **SELECTION}).ticket for n in range(count)]
    wait_for(producer, tickets, workers=[worker(concurrency=2)])
    return tickets


def test_pause_by_tickets_then_resume_by_instance(
    client: httpx.Client, producer: Producer, start_worker: WorkerFactory
) -> None:
    """POST /v1/operations/pause with tickets: 202, one queued result each, tickets that end
    succeeded; resume with instance_id and all: every task created there; unknown: 404; some
    unknown: 207; an instance where nothing was created: 200, no results."""
    tickets = _created(producer, start_worker, 2)
    paused = client.post("/v1/operations/pause", json={"tickets": tickets})
    assert paused.status_code == 202, paused.text
    body = paused.json()
    assert (body["accepted"], body["rejected"]) == (2, 0)
    assert {r["outcome"] for r in body["results"]} == {"queued"}
    assert [r["target"] for r in body["results"]] == tickets
    done = wait_for(producer, body["tickets"])
    assert {s.state for s in done.values()} == {TicketState.SUCCEEDED}
    looked = client.get(f"/v1/replications/{body['tickets'][0]}")
    assert looked.status_code == 200 and looked.json()["request"]["operation"] == "pause"

    everything = {"instance_id": VALID["instance_id"], "all": True}
    resumed = client.post("/v1/operations/resume", json=everything)
    assert resumed.status_code == 202, resumed.text
    assert resumed.json()["accepted"] == 2
    done = wait_for(producer, resumed.json()["tickets"])
    assert {s.state for s in done.values()} == {TicketState.SUCCEEDED}

    unknown = client.post("/v1/operations/delete", json={"tickets": ["tk_" + "0" * 32]})
    assert unknown.status_code == 404 and unknown.json()["results"][0]["outcome"] == "not_found"
    mixed = client.post("/v1/operations/delete", json={"tickets": [tickets[0], "tk_" + "0" * 32]})
    assert mixed.status_code == 207 and mixed.json()["accepted"] == 1
    elsewhere = client.post("/v1/operations/pause", json={"instance_id": "f" * 36, "all": True})
    assert elsewhere.status_code == 200 and elsewhere.json()["results"] == []


def test_modify_and_bad_bodies(
    client: httpx.Client, producer: Producer, start_worker: WorkerFactory
) -> None:
    """POST /v1/operations/modify: 202 with a Location, the ticket ends succeeded; a body
    without a selection, or with both tickets and an instance, is 422 naming its field."""
    _created(producer, start_worker, 1)
    tables = {"repl_type": "include_tables", "repl_scope": "part", "tables": ["orders"]}
    answer = client.post(
        "/v1/operations/modify", json={**request_n(0), "table_repl_config": tables}
    )
    assert answer.status_code == 202, answer.text
    ticket = answer.json()["ticket"]
    assert answer.headers["location"] == f"/v1/replications/{ticket}"
    assert wait_for(producer, [ticket])[ticket].state is TicketState.SUCCEEDED

    plain = client.post("/v1/operations/modify", json=request_n(0))
    assert plain.status_code == 422 and errors_of(plain)[0]["field"] == "change"
    both = {"tickets": [ticket], "instance_id": VALID["instance_id"], "all": True}
    mixed = client.post("/v1/operations/pause", json=both)
    assert mixed.status_code == 422 and errors_of(mixed)[0]["field"] == "body"
    wrong = client.post("/v1/operations/pause", json={"tickets": ["nope"]})
    assert wrong.status_code == 422 and errors_of(wrong)[0]["field"].startswith("tickets")


def test_the_operation_routes_are_documented(client: httpx.Client) -> None:
    """/openapi.json lists the four routes with their operation ids and request bodies."""
    document = client.get("/openapi.json").json()
    for name in ("pause", "resume", "delete", "modify"):
        route = document["paths"][f"/v1/operations/{name}"]["post"]
        assert route["operationId"] in (f"{name}Tasks", "modifyTask")
        assert route["requestBody"]["required"] is True
        assert "202" in route["responses"]
