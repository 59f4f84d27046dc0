"""The batch path's create calls in flight together (``TaurusClient.create_replications``
over ``aio.send_many``): each request signed as ``http.send`` signs it, each answer read as
``create_replication`` reads it, each failure its own request's."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator, Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from htap_sync.common.errors import Ambiguous, Rejected, ServerError, TransportError
from htap_sync.common.models import ReplicationRequest, parse_request
from htap_sync.worker.api.aio import EventLoop, LoopTransport
from htap_sync.worker.api.auth import TokenAuth
from htap_sync.worker.api.client import Created, TaurusClient
from tests.conftest import request_data
from tests.scripted_api import created, refused

BASE_URL = "https://taurus.invalid"
Handler = Callable[[httpx.Request], Any]


@pytest.fixture
def loop() -> Iterator[EventLoop]:
    """An event-loop thread, stopped after the test."""
    running = EventLoop()
    yield running
    running.close()


def _requests(n: int) -> list[ReplicationRequest]:
    return [parse_request(request_data(task_name=f"together_{i:02d}")) for i in range(n)]


def _client(
    handler: Handler, loop: EventLoop | None, auth: httpx.Auth | None = None
) -> TaurusClient:
    """A client whose calls go together through the loop's bridge (or, None, one by one)."""
    if loop is None:
        http = httpx.Client(base_url=BASE_URL, transport=httpx.MockTransport(handler), auth=auth)
        return TaurusClient(http)
    bridge = LoopTransport(httpx.MockTransport(handler), loop)
    http = httpx.Client(base_url=BASE_URL, transport=bridge, auth=auth)
    return TaurusClient(http, together=bridge)


def test_a_batch_of_create_calls_is_in_flight_at_once_each_signed(loop: EventLoop) -> None:
    """The async API answers none of 16 calls until all 16 are in flight; each call carries
    the client's auth and headers, and each ticket gets its own job."""
    count, arrived = 16, []
    all_in = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        arrived.append(request)
        if len(arrived) == count:
            all_in.set()
        await asyncio.wait_for(all_in.wait(), timeout=10)
        name = request.read().decode().split('"task_name":"')[1].split('"')[0]
        return created(f"job-{name}")

    client = _client(handler, loop, TokenAuth(SecretStr("tok-1")))
    answers = client.create_replications(_requests(count))
    assert answers == [
        Created(f"job-together_{i:02d}", f"req-job-together_{i:02d}") for i in range(count)
    ]
    assert all(r.headers["X-Auth-Token"] == "tok-1" for r in arrived)
    assert all(r.headers["Content-Type"] == "application/json;charset=utf-8" for r in arrived)
    assert {r.method for r in arrived} == {"POST"}


def _mixed(request: httpx.Request) -> httpx.Response:
    """One answer of each kind, chosen by the task's name."""
    body = request.read().decode()
    if "together_00" in body:
        return created("job-0")
    if "together_01" in body:
        return refused(400, "DBS.200022", "Instance not found.")
    if "together_02" in body:
        raise httpx.ConnectError("refused", request=request)
    if "together_03" in body:
        raise httpx.ReadTimeout("slow", request=request)
    return httpx.Response(200, json={})  # a success without a job id


@pytest.mark.parametrize("together", [True, False])
def test_each_call_keeps_its_own_answer_and_failure(loop: EventLoop, together: bool) -> None:
    """Together or one by one, the same reading: a job; a refusal; "not sent"; "sent, no
    answer"; a 2xx without a job id (ambiguous). None of them stops the others."""

    async def handler(request: httpx.Request) -> httpx.Response:
        return _mixed(request)

    client = _client(handler if together else _mixed, loop if together else None)
    answers = client.create_replications(_requests(5))
    assert answers[0] == Created("job-0", "req-job-0")
    assert isinstance(answers[1], Rejected) and answers[1].error_code == "DBS.200022"
    assert isinstance(answers[2], TransportError) and "not sent" in str(answers[2])
    assert isinstance(answers[3], Ambiguous) and not isinstance(answers[3], ServerError)
    assert isinstance(answers[4], ServerError)


class RenewingAuth(httpx.Auth):
    """Sends an old token; on a 401 renews it and sends the request again."""

    def __init__(self) -> None:
        self.renewed = 0

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["X-Auth-Token"] = "old"
        response = yield request
        if response.status_code == 401:
            self.renewed += 1
            request.headers["X-Auth-Token"] = "new"
            yield request


def test_an_auth_flow_that_answers_a_401_sends_again_in_a_second_round(loop: EventLoop) -> None:
    """Every call is refused with the old token, then created with the renewed one."""
    seen: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["X-Auth-Token"])
        if request.headers["X-Auth-Token"] != "new":
            return refused(401, "APIGW.0301", "Incorrect IAM authentication information.")
        return created("job")

    auth = RenewingAuth()
    answers = _client(handler, loop, auth).create_replications(_requests(4))
    assert answers == [Created("job", "req-job")] * 4
    assert seen == ["old"] * 4 + ["new"] * 4 and auth.renewed == 4


class FailingAuth(httpx.Auth):
    """Cannot sign one request (say, its project's token cannot be had)."""

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if b"together_01" in request.read():
            raise RuntimeError("no token for this project")
        yield request


def test_an_auth_failure_is_its_own_requests_alone(loop: EventLoop) -> None:
    """The request that could not be signed is never sent; the others are."""
    sent: list[bytes] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.read())
        return created("job")

    answers = _client(handler, loop, FailingAuth()).create_replications(_requests(3))
    assert isinstance(answers[1], RuntimeError)
    assert answers[0] == answers[2] == Created("job", "req-job")
    assert len(sent) == 2 and not any(b"together_01" in body for body in sent)
