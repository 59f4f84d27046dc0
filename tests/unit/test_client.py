"""The TaurusDB client, over httpx.MockTransport: what it sends and how it reads answers."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from htap_sync.common.errors import Ambiguous, Rejected, ServerError, Throttled, TransportError
from htap_sync.common.models import parse_request
from htap_sync.common.settings import load_settings
from htap_sync.worker.api.auth import TokenAuth
from htap_sync.worker.api.client import TaurusClient, make_http
from tests.conftest import request_data

Handler = Callable[[httpx.Request], httpx.Response]
PATH = (
    "/v3/0123456789abcdef0123456789abcdef/instances/0f1e2d3c4b5a69788796a5b4c3d2e1f0in17"
    "/starrocks/databases/replication"
)


def _client(handler: Handler, **settings: object) -> TaurusClient:
    s = load_settings(
        {"endpoint": "https://gaussdb.cn-north-4.myhuaweicloud.com", **settings}, env_file=None
    )
    auth = TokenAuth(s.auth.token) if s.auth.token else None
    return TaurusClient(make_http(s, httpx.MockTransport(handler), auth), language=s.cloud.language)


def test_create_sends_the_documented_request() -> None:
    """POST to the replication path, JSON body of the API fields, documented headers, token."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"job_id": "job-1"}, headers={"X-Request-Id": "r1"})

    client = _client(handler, auth_token="tok-123", language="zh-cn")
    created = client.create_replication(parse_request(request_data()))
    assert (created.job_id, created.request_id) == ("job-1", "r1")
    (sent,) = seen
    assert sent.method == "POST"
    assert sent.url == f"https://gaussdb.cn-north-4.myhuaweicloud.com{PATH}"
    assert sent.headers["Content-Type"] == "application/json;charset=utf-8"
    assert sent.headers["X-Language"] == "zh-cn"
    assert sent.headers["X-Auth-Token"] == "tok-123"
    assert json.loads(sent.content) == {
        "source_instance_id": "1a2b3c4d5e6f708192a3b4c5d6e7f809in07",
        "source_database": "src_db",
        "target_database": "tgt_db",
        "task_name": "task_orders_001",
    }


def test_errors_come_out_classified() -> None:
    """Answers and transport failures surface as the project's errors only."""
    answers = iter(
        [
            httpx.Response(
                400, json={"error_code": "DBS.200022", "error_msg": "Instance not found."}
            ),
            httpx.Response(429, json={"error_code": "APIGW.0308", "error_msg": "throttled"}),
            httpx.Response(200, json={"no": "job id"}),
        ]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        return next(answers)

    client = _client(handler)
    request = parse_request(request_data())
    with pytest.raises(Rejected):
        client.create_replication(request)
    with pytest.raises(Throttled):
        client.create_replication(request)
    with pytest.raises(ServerError, match="without a job_id"):
        client.create_replication(request)


@pytest.mark.parametrize(
    ("raised", "expected"),
    [(httpx.ConnectError("refused"), TransportError), (httpx.ReadTimeout("late"), Ambiguous)],
)
def test_transport_errors_are_wrapped(raised: Exception, expected: type[Exception]) -> None:
    """A refused connection is retryable; a timeout after sending is ambiguous."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise raised

    with pytest.raises(expected):
        _client(handler).create_replication(parse_request(request_data()))


def test_find_pages_through_the_list() -> None:
    """find_replication asks page after page (limit 100) until it finds the name or runs out."""
    names = [f"task_{i:03d}" for i in range(250)]
    offsets: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.method == "GET"
        assert request.url.path == PATH
        limit = int(request.url.params["limit"])
        offset = int(request.url.params["offset"])
        offsets.append(offset)
        page = [
            {"task_name": n, "source_database": "src_db", "target_database": "tgt_db"}
            for n in names[offset : offset + limit]
        ]
        return httpx.Response(200, json={"total_count": str(len(names)), "replications": page})

    client = _client(handler)
    found = client.find_replication(parse_request(request_data(task_name="task_123")))
    assert found is not None and found.task_name == "task_123"
    assert found.matches(parse_request(request_data(task_name="task_123")))
    assert offsets == [0, 100]
    offsets.clear()
    assert client.find_replication(parse_request(request_data(task_name="absent"))) is None
    assert offsets == [0, 100, 200]


def test_find_tells_other_database_pairs_apart() -> None:
    """A task with the same name but other databases does not match the request."""

    def handler(request: httpx.Request) -> httpx.Response:
        item = {"task_name": "task_orders_001", "source_database": "x_db", "target_database": "y"}
        return httpx.Response(200, json={"total_count": "1", "replications": [item]})

    found = _client(handler).find_replication(parse_request(request_data()))
    assert found is not None
    assert not found.matches(parse_request(request_data()))


def test_http_client_verifies_tls_and_never_follows_redirects() -> None:
    """The worker's client verifies certificates and treats a redirect as an answer."""
    s = load_settings({"endpoint": "https://gaussdb.example.com"}, env_file=None)
    http = make_http(s)
    assert http.follow_redirects is False
    assert http.timeout.read == s.cloud.request_timeout_s
    assert "X-Auth-Token" not in http.headers
    http.close()
