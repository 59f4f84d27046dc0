"""The HTTP ingress over real HTTP (uvicorn on loopback), a real Redis and a real worker."""

from __future__ import annotations

import json
import logging
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from htap_sync.common.errors import RequestInvalid, SettingsError
from htap_sync.common.keys import Keys
from htap_sync.common.models import RULES, parse_request
from htap_sync.common.settings import Settings
from htap_sync.devstack import Service, free_port, wait_until
from htap_sync.producer.api import Producer
from htap_sync.producer.ingress import ingress_config, make_ingress
from tests.conftest import VALID, request_data
from tests.integration.conftest import WorkerFactory
from tests.integration.harness import child_env

KEY = "ingress-test-key-1"
SECOND_KEY = "ingress-test-key-2"
AUTH = {"X-API-Key": KEY}
MAX_BODY = 4096
MAX_ITEMS = 5
REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


class Served:
    """An app served by uvicorn on a free loopback port, from a thread of the test process."""

    def __init__(self, app: Starlette) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        config = ingress_config(app, host="127.0.0.1", port=self.port, configure_logging=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def __enter__(self) -> Self:
        """Start serving; return once uvicorn reports it started."""
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert self._thread.is_alive(), "the ingress server thread died"
            assert time.monotonic() < deadline, "the ingress did not start within 10 s"
            self._thread.join(timeout=0.01)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop serving and release the port."""
        self._server.should_exit = True
        self._thread.join(timeout=10)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout=10)
        self._sock.close()

    def client(self, headers: dict[str, str] | None = None) -> httpx.Client:
        """A client of this server (no proxy from the environment)."""
        return httpx.Client(base_url=self.url, headers=headers, timeout=10, trust_env=False)

    def raw(self, head: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
        """Send bytes as they are and read one answer: (status, headers, body).

        Fails if no complete answer arrives within 5 s, e.g. when the server waits for a body
        it should have refused without reading.
        """
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as conn:
            conn.sendall(head.encode() + b"\r\n\r\n" + body)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                assert chunk, f"connection closed before an answer: {data!r}"
                data += chunk
            raw_head, _, rest = data.partition(b"\r\n\r\n")
            lines = raw_head.decode("latin-1").split("\r\n")
            headers = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
            length = int(headers["content-length"])
            while len(rest) < length:
                chunk = conn.recv(65536)
                assert chunk, "connection closed inside the answer"
                rest += chunk
        return int(lines[0].split()[1]), headers, rest


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Two keys, small limits to test them cheaply."""
    return {
        "api_keys": f"{KEY}, {SECOND_KEY}",
        "api_max_body_bytes": MAX_BODY,
        "api_max_items": MAX_ITEMS,
    }


@pytest.fixture
def server(settings: Settings, producer: Producer) -> Iterator[Served]:
    """The ingress on the test's settings, served over loopback."""
    with Served(make_ingress(settings, producer)) as served:
        yield served


@pytest.fixture
def client(server: Served) -> Iterator[httpx.Client]:
    """A client that sends a valid key."""
    with server.client(AUTH) as c:
        yield c


def _errors(response: httpx.Response) -> list[dict[str, str]]:
    assert response.headers["content-type"] == "application/json"
    errors = response.json()["errors"]
    assert isinstance(errors, list)
    return errors


def _request(n: int, **changes: str) -> dict[str, str]:
    return request_data(**{"task_name": f"ingress_task_{n:04d}", **changes})


def test_one_request_is_queued_under_the_python_apis_ticket(
    client: httpx.Client, producer: Producer
) -> None:
    """POST one object: 202 with its ticket and status; the message is really on the queue."""
    response = client.post("/v1/replications", json=_request(1))
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["outcome"] == "queued" and body["state"] == "queued"
    assert body["request"] == _request(1) | {"source_node_id": None}
    assert response.headers["location"] == f"/v1/replications/{body['ticket']}"
    assert REQUEST_ID.match(response.headers["x-request-id"])
    assert producer.queue_depth() == 1
    receipt = producer.enqueue(_request(1))
    assert (receipt.ticket, receipt.outcome.value) == (body["ticket"], "duplicate")


def test_a_list_is_queued_and_a_worker_finishes_it(
    client: httpx.Client, producer: Producer, start_worker: WorkerFactory
) -> None:
    """POST a list: 202, one queued result per item; a real worker makes each ticket succeed."""
    items = [_request(n) for n in range(3)]
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
    ticket = client.post("/v1/replications", json=_request(7)).json()["ticket"]
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
        assert refused.status_code == 422 and _errors(refused)[0]["field"] == field


def test_a_duplicate_returns_the_same_ticket_and_queues_nothing(
    client: httpx.Client, producer: Producer
) -> None:
    """The same request twice: the second answers 202 duplicate with the same ticket."""
    first = client.post("/v1/replications", json=_request(1)).json()
    again = client.post("/v1/replications", json=_request(1))
    assert again.status_code == 202
    assert again.json()["outcome"] == "duplicate"
    assert again.json()["ticket"] == first["ticket"]
    assert producer.queue_depth() == 1


def test_project_id_defaults_to_the_setting(settings: Settings) -> None:
    """With HTAP_SYNC_PROJECT_ID set, project_id may be left out, and the schema says so."""
    project = "f" * 32
    defaulted = settings.model_copy(update={"project_id": project})
    producer = Producer(defaulted)
    try:
        with Served(make_ingress(defaulted, producer)) as served, served.client(AUTH) as c:
            data = {k: v for k, v in _request(1).items() if k != "project_id"}
            response = c.post("/v1/replications", json=data)
            document = c.get("/openapi.json").json()
    finally:
        producer.close()
    assert response.status_code == 202, response.text
    assert response.json()["request"]["project_id"] == project
    assert "project_id" not in document["components"]["schemas"]["NewReplication"]["required"]


@pytest.mark.parametrize(
    ("changes", "field", "rule"),
    [
        ({"task_name": "a"}, "task_name", RULES["task_name"]),
        ({"instance_id": "short"}, "instance_id", RULES["instance_id"]),
        ({"colour": "blue"}, "colour", "unknown field"),
        ({"source_database": 123}, "source_database", "must be a string"),
    ],
)
def test_an_invalid_request_answers_422_naming_the_field(
    client: httpx.Client, producer: Producer, changes: dict[str, Any], field: str, rule: str
) -> None:
    """422 with the model's own errors (the CLI's messages); nothing is queued."""
    data = {**VALID, **changes}
    response = client.post("/v1/replications", json=data)
    assert response.status_code == 422
    errors = _errors(response)
    assert {"field": field, "rule": rule, "message": f"{field}: {rule}"} in errors
    with pytest.raises(RequestInvalid) as expected:
        parse_request(data)
    assert errors == expected.value.errors
    assert producer.queue_depth() == 0


def test_a_missing_field_is_named(client: httpx.Client) -> None:
    """A request without task_name answers 422 'task_name: required'."""
    data = {k: v for k, v in VALID.items() if k != "task_name"}
    response = client.post("/v1/replications", json=data)
    assert response.status_code == 422
    assert _errors(response)[0]["message"] == "task_name: required"


def test_a_conflict_answers_409_with_the_holding_ticket(client: httpx.Client) -> None:
    """A different request under a queued task name: 409 with that ticket and its state."""
    first = client.post("/v1/replications", json=_request(1)).json()
    response = client.post("/v1/replications", json=_request(1, target_database="other_db"))
    assert response.status_code == 409
    body = response.json()
    assert (body["ticket"], body["state"]) == (first["ticket"], "queued")
    assert _errors(response)[0]["field"] == "task_name"


def test_a_mixed_list_answers_207_with_each_items_status(
    client: httpx.Client, producer: Producer
) -> None:
    """Queued, invalid, conflict and duplicate items in one list: 207, each with its status."""
    held = client.post("/v1/replications", json=_request(1)).json()["ticket"]
    items: list[Any] = [
        _request(2),
        _request(3, task_name="x"),
        _request(1, target_database="other_db"),
        _request(1),
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
    client.post("/v1/replications", json=[_request(1), _request(2)])
    conflicts = [_request(1, target_database="db_two"), _request(2, target_database="db_two")]
    response = client.post("/v1/replications", json=conflicts)
    assert response.status_code == 409
    assert response.json()["accepted"] == 0
    mixed = [conflicts[0], _request(3, task_name="x")]
    response = client.post("/v1/replications", json=mixed)
    assert response.status_code == 422
    assert [r["status"] for r in response.json()["results"]] == ["conflict", "invalid"]


@pytest.mark.parametrize("count", [0, MAX_ITEMS + 1])
def test_an_empty_or_too_long_list_answers_422(
    client: httpx.Client, producer: Producer, count: int
) -> None:
    """A list must hold 1 to HTAP_SYNC_API_MAX_ITEMS requests; otherwise nothing is queued."""
    response = client.post("/v1/replications", json=[_request(n) for n in range(count)])
    assert response.status_code == 422
    assert _errors(response)[0]["field"] == "body"
    assert producer.queue_depth() == 0


@pytest.mark.parametrize("body", [b"{not json", b'{"a": 1', b"\xff\xfe\x00", b"[" * 4000])
def test_malformed_json_answers_400(client: httpx.Client, body: bytes) -> None:
    """A body that is not JSON (even absurdly nested) answers 400 naming the body."""
    response = client.post(
        "/v1/replications", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert _errors(response) == [
        {"field": "body", "rule": "not valid JSON", "message": "body: not valid JSON"}
    ]


@pytest.mark.parametrize("value", ['"text"', "42", "null"])
def test_json_that_is_no_object_answers_422(client: httpx.Client, value: str) -> None:
    """JSON that is neither an object nor a list answers 422."""
    response = client.post(
        "/v1/replications", content=value, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert _errors(response)[0]["rule"] == "must be an object or a list of objects"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_that_is_not_json_answers_415(server: Served, content_type: str | None) -> None:
    """Only application/json (or a +json type) is read."""
    headers = dict(AUTH)
    if content_type:
        headers["Content-Type"] = content_type
    with server.client(headers) as c:
        response = c.post("/v1/replications", content=json.dumps(VALID).encode())
    assert response.status_code == 415
    assert _errors(response)[0]["field"] == "Content-Type"


def test_a_body_of_exactly_the_limit_is_read(client: httpx.Client) -> None:
    """The limit is inclusive: a body of exactly HTAP_SYNC_API_MAX_BODY_BYTES is served."""
    text = json.dumps(_request(1))
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


def test_an_unknown_ticket_answers_404(client: httpx.Client) -> None:
    """A well-formed ticket never submitted, and a malformed one, are 'not found'."""
    for ticket in ("tk_" + "0" * 32, "nonsense"):
        response = client.get(f"/v1/replications/{ticket}")
        assert response.status_code == 404
        assert _errors(response)[0]["field"] == "ticket"


def test_health_answers_without_a_key(server: Served) -> None:
    """GET /healthz needs no key and answers 200 while Redis answers PING."""
    with server.client() as c:
        response = c.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"ok": True, "redis": "ok"}


def test_an_unreachable_redis_answers_503_json(settings: Settings) -> None:
    """With Redis down: health, POST and GET answer 503 JSON with Retry-After, no traceback."""
    dead = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    producer = Producer(dead)
    try:
        with Served(make_ingress(dead, producer)) as served, served.client(AUTH) as c:
            health = c.get("/healthz")
            assert health.status_code == 503
            assert health.json() == {"ok": False, "redis": "unreachable"}
            for response in (
                c.post("/v1/replications", json=_request(1)),
                c.post("/v1/replications", json=[_request(1), _request(2)]),
                c.get(f"/v1/replications/tk_{'0' * 32}"),
            ):
                assert response.status_code == 503
                assert response.headers["retry-after"] == "1"
                assert _errors(response)[0]["field"] == "redis"
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
    assert request_id in _errors(response)[0]["rule"]
    assert "internal detail" not in response.text and "Traceback" not in response.text
    assert "internal detail for the log only" in caplog.text and request_id in caplog.text


def test_a_missing_or_wrong_key_answers_401(
    server: Served, caplog: pytest.LogCaptureFixture
) -> None:
    """No key, a wrong key or another auth scheme: 401 with WWW-Authenticate; keys never echoed."""
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-key-that-must-not-echo"
    cases: list[dict[str, str]] = [
        {},
        {"X-API-Key": wrong},
        {"Authorization": f"Bearer {wrong}"},
        {"Authorization": f"Basic {KEY}"},
        {"X-API-Key": KEY[:-1]},
    ]
    for headers in cases:
        with server.client(headers) as c:
            for response in (
                c.post("/v1/replications", json=_request(1)),
                c.get(f"/v1/replications/tk_{'0' * 32}"),
            ):
                assert response.status_code == 401, headers
                assert response.headers["www-authenticate"].startswith("Bearer")
                assert _errors(response)[0]["field"] == "X-API-Key"
                assert wrong not in response.text and KEY not in response.text
    assert wrong not in caplog.text and KEY not in caplog.text


@pytest.mark.parametrize(
    "headers",
    [
        {"X-API-Key": KEY},
        {"X-API-Key": SECOND_KEY},
        {"Authorization": f"Bearer {KEY}"},
        {"Authorization": f"bearer {SECOND_KEY}"},
    ],
)
def test_either_header_style_and_any_configured_key_is_accepted(
    server: Served, headers: dict[str, str]
) -> None:
    """X-API-Key and Authorization: Bearer both work, with every configured key."""
    with server.client(headers) as c:
        assert c.post("/v1/replications", json=_request(1)).status_code == 202


def test_auth_off_serves_without_keys(settings: Settings, producer: Producer) -> None:
    """HTAP_SYNC_API_AUTH=off: no key configured, none required, none in the document."""
    open_settings = settings.model_copy(update={"api_auth": "off", "api_keys": None})
    with Served(make_ingress(open_settings, producer)) as served, served.client() as c:
        assert c.post("/v1/replications", json=_request(1)).status_code == 202
        document = c.get("/openapi.json").json()
    post = document["paths"]["/v1/replications"]["post"]
    assert post["security"] == [] and "401" not in post["responses"]


def test_the_app_refuses_to_build_without_keys(settings: Settings, producer: Producer) -> None:
    """Auth on and no key: make_ingress raises the SettingsError naming HTAP_SYNC_API_KEYS."""
    keyless = settings.model_copy(update={"api_keys": None})
    with pytest.raises(SettingsError, match="HTAP_SYNC_API_KEYS"):
        make_ingress(keyless, producer)


def _cli_env(settings: Settings, **changes: str) -> dict[str, str]:
    return child_env(settings, **changes)


def test_htap_sync_api_stops_at_start_without_keys(settings: Settings, tmp_path: Path) -> None:
    """`htap-sync api` with auth on and no key exits 78 naming HTAP_SYNC_API_KEYS."""
    env = _cli_env(settings)
    env.pop("HTAP_SYNC_API_KEYS")
    done = subprocess.run(
        [sys.executable, "-m", "htap_sync", "api", "--port", str(free_port())],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 78, done.stderr
    assert "HTAP_SYNC_API_KEYS" in done.stderr
    assert "Traceback" not in done.stderr


def test_htap_sync_api_serves(settings: Settings, tmp_path: Path) -> None:
    """`htap-sync api --host --port` serves the ingress until SIGTERM."""
    port = free_port()
    service = Service(
        "ingress",
        [sys.executable, "-m", "htap_sync", "api", "--host", "127.0.0.1", "--port", str(port)],
        env=_cli_env(settings),
        log_dir=tmp_path,
    )
    try:
        url = f"http://127.0.0.1:{port}"

        def answering() -> bool:
            assert service.alive(), service.log_tail()
            try:
                return httpx.get(f"{url}/healthz", trust_env=False).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(answering, timeout_s=30, what="htap-sync api")
        response = httpx.post(
            f"{url}/v1/replications", json=_request(1), headers=AUTH, trust_env=False
        )
        assert response.status_code == 202, response.text
    finally:
        code = service.stop()
    # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught: -15 is a clean stop.
    assert code in (0, -15), service.log_tail()
    log = service.log_path.read_text()
    assert "Finished server process" in log
    assert KEY not in log


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
    """/openapi.json needs no key: OpenAPI 3.1, every route and status, the key scheme."""
    with server.client() as c:
        response = c.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"] == "3.1.0"
    paths = document["paths"]
    codes = {
        ("/v1/replications", "post"): {"202", "207", "400", "401", "409", "413", "415", "422"},
        ("/v1/replications/{ticket}", "get"): {"200", "401", "404", "503"},
        ("/healthz", "get"): {"200", "503"},
        ("/openapi.json", "get"): {"200"},
    }
    for (path, method), expected in codes.items():
        assert expected <= set(paths[path][method]["responses"]), path
    schemes = document["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert "$defs" not in json.dumps(document)
    body = document["components"]["schemas"]["NewReplication"]
    assert set(body["properties"]) == set(RULES)


def test_a_full_queue_answers_503_instead_of_holding_the_call(settings: Settings) -> None:
    """With HTAP_SYNC_MAX_QUEUE_DEPTH reached, POST answers 503 with Retry-After at once and
    queues nothing; with room again it accepts."""
    limited = settings.model_copy(update={"max_queue_depth": 2, "batch_size": 1})
    producer = Producer(limited)
    try:
        with Served(make_ingress(limited, producer)) as served, served.client(AUTH) as c:
            assert c.post("/v1/replications", json=[_request(1), _request(2)]).status_code == 202
            for body in (_request(3), [_request(4)]):
                full = c.post("/v1/replications", json=body)
                assert full.status_code == 503
                assert full.headers["retry-after"] == "5"
                assert _errors(full)[0]["field"] == "queue"
            assert producer.queue_depth() == 2
            producer.store.redis.delete(Keys(limited.key_prefix).queue(limited.queue))
            assert c.post("/v1/replications", json=_request(3)).status_code == 202
    finally:
        producer.close()


def test_metrics_count_answers_by_status(client: httpx.Client, server: Served) -> None:
    """GET /metrics (no key) counts the ingress's answers by method, route and status."""
    client.post("/v1/replications", json=_request(1))
    client.post("/v1/replications", json={"task_name": "x"})
    with server.client() as anonymous:
        text = anonymous.get("/metrics").text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }
    for status in ("202", "422"):
        labels = (("method", "POST"), ("route", "/v1/replications"), ("status", status))
        assert samples[("htap_sync_ingress_requests_total", labels)] >= 1
