"""The HTTP ingress over real HTTP, a real Redis and a real worker: requests and lists are
queued under the Python API's tickets; duplicates, conflicts and mixed lists."""

from __future__ import annotations

import time
from typing import Any

import httpx

from htap_sync.common.settings import Settings
from htap_sync.producer.api import Producer
from htap_sync.producer.ingress import make_ingress
from tests.integration.conftest import WorkerFactory
from tests.integration.ingress.served import (
    AUTH,
    REQUEST_ID,
    Served,
    errors_of,
    new_replication,
    request_n,
)


def test_one_request_is_queued_under_the_python_apis_ticket(
    client: httpx.Client, producer: Producer
) -> None:
    """POST one object: 202 with its ticket and status; the message is really on the queue."""
    response = client.post("/v1/replications", json=request_n(1))
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["outcome"] == "queued" and body["state"] == "queued"
    # One request is interactive (its lane shows in its status; no tenant was named).
    assert body["request"] == request_n(1) | {"source_node_id": None, "lane": "interactive"}
    assert response.headers["location"] == f"/v1/replications/{body['ticket']}"
    assert REQUEST_ID.match(response.headers["x-request-id"])
    assert producer.queue_depth() == 1
    receipt = producer.enqueue(request_n(1))
    assert (receipt.ticket, receipt.outcome.value) == (body["ticket"], "duplicate")


def test_a_list_is_queued_and_a_worker_finishes_it(
    client: httpx.Client, producer: Producer, start_worker: WorkerFactory
) -> None:
    """POST a list: 202, one queued result per item; a real worker makes each ticket succeed."""
    items = [request_n(n) for n in range(3)]
    response = client.post("/v1/replications", json=items)
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (3, 0)
    assert [r["index"] for r in body["results"]] == [0, 1, 2]
    assert {r["status"] for r in body["results"]} == {"queued"}
    assert all(r["errors"] == [] for r in body["results"])
    tickets = [r["ticket"] for r in body["results"]]
    assert tickets == [r.ticket for r in producer.enqueue_many(items)]
    assert producer.queue_depth() == 1  # one batch message (HTAP_SYNC_BATCH_SIZE 16)

    worker = start_worker(concurrency=2)
    deadline = time.monotonic() + 60
    pending = set(tickets)
    while pending:
        assert worker.alive(), worker.log_tail()
        assert time.monotonic() < deadline, f"unfinished: {pending}\n{worker.log_tail()}"
        for ticket in sorted(pending):
            status = client.get(f"/v1/replications/{ticket}")
            assert status.status_code == 200, status.text
            if status.json()["state"] == "succeeded":
                assert status.json()["job_id"]
                pending.discard(ticket)
        time.sleep(0.05)  # poll interval, bounded by the deadline above


def test_a_lookup_waits_until_the_task_syncs(
    client: httpx.Client, start_worker: WorkerFactory
) -> None:
    """GET ?wait_s=&until=synced answers once the task is syncing; bad values are 422."""
    ticket = client.post("/v1/replications", json=request_n(7)).json()["ticket"]
    assert client.get(f"/v1/replications/{ticket}?wait_s=0.2&until=synced").json()["sync"] is None
    start_worker(concurrency=2, follow_first_s=0.2, follow_interval_s=0.5)
    answer = client.get(f"/v1/replications/{ticket}", params={"wait_s": 30, "until": "synced"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["state"], body["sync"]["state"], body["sync"]["stage"]) == (
        "succeeded",
        "syncing",
        "Incremental",
    )
    assert body["task_ref"] == f"{body['request']['instance_id']}/{body['request']['task_name']}"
    for query, field in (("wait_s=61", "wait_s"), ("wait_s=x", "wait_s"), ("until=done", "until")):
        refused = client.get(f"/v1/replications/{ticket}?{query}")
        assert refused.status_code == 422 and errors_of(refused)[0]["field"] == field


def test_a_duplicate_returns_the_same_ticket_and_queues_nothing(
    client: httpx.Client, producer: Producer
) -> None:
    """The same request twice: the second answers 202 duplicate with the same ticket."""
    first = client.post("/v1/replications", json=request_n(1)).json()
    again = client.post("/v1/replications", json=request_n(1))
    assert again.status_code == 202
    assert again.json()["outcome"] == "duplicate"
    assert again.json()["ticket"] == first["ticket"]
    assert producer.queue_depth() == 1


def test_project_id_defaults_to_the_setting(settings: Settings) -> None:
    """With HTAP_SYNC_PROJECT_ID set, project_id may be left out, and the schema says so."""
    project = "f" * 32
    defaulted = settings.replace(project_id=project)
    producer = Producer(defaulted)
    try:
        with Served(make_ingress(defaulted, producer)) as served, served.client(AUTH) as c:
            data = {k: v for k, v in request_n(1).items() if k != "project_id"}
            response = c.post("/v1/replications", json=data)
            document = c.get("/openapi.json").json()
    finally:
        producer.close()
    assert response.status_code == 202, response.text
    assert response.json()["request"]["project_id"] == project
    assert "project_id" not in new_replication(document)["required"]


def test_a_conflict_answers_409_with_the_holding_ticket(client: httpx.Client) -> None:
    """A different request under a queued task name: 409 with that ticket and its state."""
    first = client.post("/v1/replications", json=request_n(1)).json()
    response = client.post("/v1/replications", json=request_n(1, target_database="other_db"))
    assert response.status_code == 409
    body = response.json()
    assert (body["ticket"], body["state"]) == (first["ticket"], "queued")
    assert errors_of(response)[0]["field"] == "task_name"


def test_a_mixed_list_answers_207_with_each_items_status(
    client: httpx.Client, producer: Producer
) -> None:
    """Queued, invalid, conflict and duplicate items in one list: 207, each with its status."""
    held = client.post("/v1/replications", json=request_n(1)).json()["ticket"]
    items: list[Any] = [
        request_n(2),
        request_n(3, task_name="x"),
        request_n(1, target_database="other_db"),
        request_n(1),
        "not an object",
    ]
    response = client.post("/v1/replications", json=items)
    assert response.status_code == 207, response.text
    body = response.json()
    assert [r["status"] for r in body["results"]] == [
        "queued",
        "invalid",
        "conflict",
        "duplicate",
        "invalid",
    ]
    assert (body["accepted"], body["rejected"]) == (2, 3)
    results = body["results"]
    assert results[1]["ticket"] is None and results[1]["errors"][0]["field"] == "task_name"
    assert results[2]["ticket"] == held == results[3]["ticket"]
    assert results[4]["errors"][0]["message"] == "request: must be an object"
    assert producer.queue_depth() == 2


def test_a_list_with_nothing_accepted_answers_4xx(client: httpx.Client) -> None:
    """No item accepted: 409 when all are conflicts, else 422; a 4xx means nothing queued."""
    client.post("/v1/replications", json=[request_n(1), request_n(2)])
    conflicts = [
        request_n(1, target_database="db_two"),
        request_n(2, target_database="db_two"),
    ]
    response = client.post("/v1/replications", json=conflicts)
    assert response.status_code == 409
    assert response.json()["accepted"] == 0
    mixed = [conflicts[0], request_n(3, task_name="x")]
    response = client.post("/v1/replications", json=mixed)
    assert response.status_code == 422
    assert [r["status"] for r in response.json()["results"]] == ["conflict", "invalid"]
