"""The HTTP ingress over real HTTP: 404, health, 503 and 500 answers, JSON with request ids,
the OpenAPI document, a full queue and the metrics."""

from __future__ import annotations

import json

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from htap_sync.common.fair_feed import tenant_queue
from htap_sync.common.keys import Keys
from htap_sync.common.models import RULES
from htap_sync.common.settings import Settings
from htap_sync.devstack import free_port
from htap_sync.producer.api import Producer
from htap_sync.producer.ingress import make_ingress
from tests.integration.ingress.served import (
    AUTH,
    REQUEST_ID,
    Served,
    errors_of,
    new_replication,
    request_n,
)


def test_an_unknown_ticket_answers_404(client: httpx.Client) -> None:
    """A well-formed ticket never submitted, and a malformed one, are 'not found'."""
    for ticket in ("tk_" + "0" * 32, "nonsense"):
        response = client.get(f"/v1/replications/{ticket}")
        assert response.status_code == 404
        assert errors_of(response)[0]["field"] == "ticket"


def test_health_answers_without_a_key(server: Served) -> None:
    """GET /healthz needs no key and answers 200 while Redis answers PING."""
    with server.client() as c:
        response = c.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"ok": True, "redis": "ok"}


def test_an_unreachable_redis_answers_503_json(settings: Settings) -> None:
    """With Redis down: health, POST and GET answer 503 JSON with Retry-After, no traceback."""
    dead = settings.replace(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    producer = Producer(dead)
    try:
        with Served(make_ingress(dead, producer)) as served, served.client(AUTH) as c:
            health = c.get("/healthz")
            assert health.status_code == 503
            assert health.json() == {"ok": False, "redis": "unreachable"}
            for response in (
                c.post("/v1/replications", json=request_n(1)),
                c.post("/v1/replications", json=[request_n(1), request_n(2)]),
                c.get(f"/v1/replications/tk_{'0' * 32}"),
            ):
                assert response.status_code == 503
                assert response.headers["retry-after"] == "1"
                assert errors_of(response)[0]["field"] == "redis"
                assert "Traceback" not in response.text
    finally:
        producer.close()


def test_a_bug_answers_500_json_and_logs_the_traceback(
    settings: Settings,
    producer: Producer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An unexpected error answers 500 JSON naming the request id; its details stay in the log."""

    def broken(ticket: str, **options: object) -> None:
        raise RuntimeError("internal detail for the log only")

    monkeypatch.setattr(producer, "status", broken)
    with Served(make_ingress(settings, producer)) as served, served.client(AUTH) as c:
        response = c.get(f"/v1/replications/tk_{'0' * 32}")
    assert response.status_code == 500
    request_id = response.headers["x-request-id"]
    assert request_id in errors_of(response)[0]["rule"]
    assert "internal detail" not in response.text and "Traceback" not in response.text
    assert "internal detail for the log only" in caplog.text and request_id in caplog.text


def test_every_answer_is_json_with_a_fresh_request_id(server: Served) -> None:
    """Unknown paths (404) and methods (405, with Allow) answer JSON with an X-Request-Id."""
    with server.client(AUTH) as c:
        responses = [
            c.get("/nowhere"),
            c.delete("/v1/replications"),
            c.get("/openapi.json"),
            c.get("/healthz"),
        ]
    assert [r.status_code for r in responses] == [404, 405, 200, 200]
    assert responses[1].headers["allow"] == "POST"
    ids = {r.headers["x-request-id"] for r in responses}
    assert len(ids) == 4 and all(REQUEST_ID.match(i) for i in ids)
    assert all(r.headers["content-type"] == "application/json" for r in responses)


def test_the_openapi_document_describes_every_route(server: Served) -> None:
    """/openapi.json needs no key: OpenAPI 3.1, every route and status, the key schemes."""
    with server.client() as c:
        response = c.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1.")
    paths = document["paths"]
    codes = {
        ("/v1/replications", "post"): {"202", "207", "400", "401", "409", "413", "415", "422"},
        ("/v1/replications/{ticket}", "get"): {"200", "401", "404", "422", "503"},
        ("/healthz", "get"): {"200", "503"},
    }
    for (path, method), expected in codes.items():
        assert expected <= set(paths[path][method]["responses"]), path
        for answer in paths[path][method]["responses"].values():
            assert "X-Request-Id" in answer["headers"]
    schemes = document["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert schemes["Bearer"] == {"type": "http", "scheme": "bearer"}
    assert "$defs" not in json.dumps(document)
    assert "HTTPValidationError" not in json.dumps(document)  # every 422 is the ingress's own
    body = new_replication(document)
    assert set(body["properties"]) == set(RULES)


def test_a_full_queue_answers_503_instead_of_holding_the_call(settings: Settings) -> None:
    """With HTAP_SYNC_MAX_QUEUE_DEPTH reached, POST answers 503 with Retry-After at once and
    queues nothing; with room again it accepts."""
    limited = settings.model_copy(update={"max_queue_depth": 2, "batch_size": 1})
    producer = Producer(limited)
    try:
        with Served(make_ingress(limited, producer)) as served, served.client(AUTH) as c:
            assert c.post("/v1/replications", json=[request_n(1), request_n(2)]).status_code == 202
            for body in (request_n(3), [request_n(4)]):
                full = c.post("/v1/replications", json=body)
                assert full.status_code == 503
                assert full.headers["retry-after"] == "5"
                assert errors_of(full)[0]["field"] == "queue"
            assert producer.queue_depth() == 2
            # The list waits in its tenant's queue (bulk), which the depth counts.
            project = request_n(1)["project_id"]
            producer.store.redis.delete(
                Keys(limited.key_prefix).queue(tenant_queue(limited, project))
            )
            assert c.post("/v1/replications", json=request_n(3)).status_code == 202
    finally:
        producer.close()


def test_metrics_count_answers_by_status(client: httpx.Client, server: Served) -> None:
    """GET /metrics (no key) counts the ingress's answers by method, route and status: the
    API's routes, FastAPI's own (/docs) and unknown paths (unmatched)."""
    client.post("/v1/replications", json=request_n(1))
    client.post("/v1/replications", json={"task_name": "x"})
    with server.client() as anonymous:
        anonymous.get("/docs")
        anonymous.get("/nowhere")
        text = anonymous.get("/metrics").text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }
    for method, route, status in [
        ("POST", "/v1/replications", "202"),
        ("POST", "/v1/replications", "422"),
        ("GET", "/docs", "200"),
        ("GET", "unmatched", "404"),
    ]:
        labels = (("method", method), ("route", route), ("status", status))
        assert samples[("htap_sync_ingress_requests_total", labels)] >= 1, labels
