"""The batched path's parts without Redis: how enqueue_many groups tickets into messages, what
a batch message holds, how a worker reads its items, and the event-loop transport bridge."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
import redis

from htap_sync.common.celery_app import CREATE_REPLICATIONS, make_celery
from htap_sync.common.messages import batch_frame, batch_item
from htap_sync.common.models import ReplicationRequest
from htap_sync.common.settings import Settings, load_settings
from htap_sync.producer.api import Producer
from htap_sync.worker.api.aio import AiohttpTransport, EventLoop, LoopTransport
from htap_sync.worker.batch import parse_items
from tests.conftest import request_data


def _settings(**changes: Any) -> Settings:
    return load_settings({"redis_url": "redis://127.0.0.1:1/0", **changes}, env_file=None)


class RecordingStore:
    """Stands in for the ticket store: records what the producer submits, accepts it all."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[ReplicationRequest, str, str]]] = []
        self.singles: list[tuple[ReplicationRequest, str, str, str]] = []

    def submit_batches(
        self,
        batches: Sequence[tuple[Sequence[str], Sequence[tuple[ReplicationRequest, str, str]]]],
        queue_key: str,
    ) -> list[tuple[str, str, str]]:
        self.batches += [list(items) for _, items in batches]
        return [("t", "queued", "queued") for _, items in batches for _ in items]

    def submit_many(
        self, items: list[tuple[ReplicationRequest, str, str, str]]
    ) -> list[tuple[str, str, str]]:
        self.singles += items
        return [("t", "queued", "queued") for _ in items]


@pytest.fixture
def recorded() -> Iterator[tuple[Producer, RecordingStore]]:
    """A producer whose store records; its Redis client is never used (nothing listens)."""

    def make(**changes: Any) -> tuple[Producer, RecordingStore]:
        settings = _settings(**changes)
        producer = Producer(settings, redis_client=redis.Redis(port=1))
        store = RecordingStore()
        producer.store = store  # type: ignore[assignment]
        # Bulk tenants are announced on Redis (common/fair_feed.py); none listens here.
        producer._announce = lambda requests: None  # type: ignore[method-assign]
        made.append(producer)
        return producer, store

    made: list[Producer] = []
    yield make  # type: ignore[misc]
    for producer in made:
        producer.close()


def _requests(n: int) -> list[dict[str, str]]:
    return [request_data(task_name=f"unit_{i:04d}") for i in range(n)]


def test_enqueue_many_groups_batch_size_tickets_per_message(recorded: Any) -> None:
    """40 valid requests and 2 invalid ones at batch size 16: messages of 16, 16 and 8, in
    input order; the invalid ones are reported, never grouped."""
    producer, store = recorded()
    requests: list[Any] = _requests(40)
    requests[3:3] = [request_data(task_name="bad name")]
    requests.append(request_data(instance_id="nope"))
    results = list(producer.enqueue_many(requests))
    assert [len(group) for group in store.batches] == [16, 16, 8]
    names = [request.task_name for group in store.batches for request, _, _ in group]
    assert names == [f"unit_{i:04d}" for i in range(40)]
    assert [r.status for r in results].count("invalid") == 2 and not store.singles
    for request, run, item in store.batches[0]:
        ticket, item_run, data = json.loads(item)
        assert (item_run, data["task_name"]) == (run, request.task_name) and ticket


def test_flushes_hold_whole_messages(recorded: Any) -> None:
    """A flush of 500 rounds up to 512 (32 full messages): 1000 requests make 63 messages,
    only the last one short."""
    producer, store = recorded(batch_size=16)
    list(producer.enqueue_many(_requests(1000), batch_size=500))
    sizes = [len(group) for group in store.batches]
    assert len(sizes) == 63 and set(sizes[:-1]) == {16} and sizes[-1] == 1000 - 62 * 16


def test_batch_size_one_sends_one_message_per_ticket(recorded: Any) -> None:
    """HTAP_SYNC_BATCH_SIZE=1 turns batching off: one create message each, as today."""
    producer, store = recorded(batch_size=1)
    list(producer.enqueue_many(_requests(5)))
    assert not store.batches and len(store.singles) == 5
    assert all(
        json.loads(message)["headers"]["task"] != CREATE_REPLICATIONS
        for *_, message in store.singles
    )


def test_the_batch_size_setting_is_checked() -> None:
    """0 or a huge batch is refused, naming the field."""
    for bad in (0, 100_000):
        with pytest.raises(ValueError, match="BATCH_SIZE"):
            _settings(batch_size=bad)
    assert _settings().batch_size == 16


def test_a_filled_frame_is_a_celery_message_of_the_batch_task() -> None:
    """What the submit script writes (head + JSON string of the body + tail) is a kombu
    envelope whose plain-JSON body is Celery's protocol 2 for the batch task."""
    app = make_celery(_settings())
    frame = batch_frame(app, "q", 16)
    items = [batch_item(f"t{i}", f"r{i}", {"task_name": f"n/{i}"}) for i in range(3)]
    text = frame.filled(items)
    envelope = json.loads(text)
    assert envelope["headers"]["task"] == CREATE_REPLICATIONS
    assert envelope["properties"]["delivery_info"]["routing_key"] == "q"
    args, kwargs, embed = json.loads(envelope["body"])
    assert args == [] and embed["chain"] is None
    assert kwargs["items"] == [[f"t{i}", f"r{i}", {"task_name": f"n/{i}"}] for i in range(3)]
    assert batch_frame(app, "q", 16).tail != frame.tail  # a fresh task id each


def test_parse_items_keeps_well_formed_items_and_names_the_others() -> None:
    """Items that do not name their ticket and run as text are refused by index."""
    items, refused = parse_items(
        [["t1", "r1", {"a": 1}], ["t2", "r2"], [1, "r", {}], "x", ["t3", "r3", None]]
    )
    assert items == [("t1", "r1", {"a": 1}), ("t3", "r3", None)]
    assert refused == [f"items[{i}]: expected [ticket, run, request]" for i in (1, 2, 3)]
    assert parse_items({"items": []}) == ([], ["items: expected a list, got dict"])


@pytest.fixture
def loop() -> Iterator[EventLoop]:
    """An event-loop thread, stopped after the test."""
    running = EventLoop()
    yield running
    running.close()


def test_the_bridge_keeps_every_call_of_a_batch_in_flight_on_one_loop(loop: EventLoop) -> None:
    """16 threads each send a request; the async handler answers none until all 16 are in
    flight on the loop together, then each thread gets its own answer."""
    count = 16
    arrived: list[str] = []
    all_in = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        arrived.append(request.url.path)
        if len(arrived) == count:
            all_in.set()
        await asyncio.wait_for(all_in.wait(), timeout=10)
        return httpx.Response(200, json={"path": request.url.path})

    http = httpx.Client(
        base_url="http://api.test", transport=LoopTransport(httpx.MockTransport(handler), loop)
    )
    answers: dict[int, Any] = {}

    def call(i: int) -> None:
        answers[i] = http.post(f"/n/{i}", json={"i": i}).json()

    threads = [threading.Thread(target=call, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert answers == {i: {"path": f"/n/{i}"} for i in range(count)}
    http.close()


def test_the_bridge_passes_httpx_errors_through_unchanged(loop: EventLoop) -> None:
    """A connect error stays a connect error ("not sent"); a read timeout stays one."""

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/refused":
            raise httpx.ConnectError("refused", request=request)
        raise httpx.ReadTimeout("slow", request=request)

    http = httpx.Client(
        base_url="http://api.test", transport=LoopTransport(httpx.MockTransport(handler), loop)
    )
    with pytest.raises(httpx.ConnectError):
        http.get("/refused")
    with pytest.raises(httpx.ReadTimeout):
        http.get("/slow")
    http.close()


@pytest.fixture
def hang_up_server() -> Iterator[str]:
    """A server that reads one request and closes the connection without an answer."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    thread.join(timeout=10)
    listener.close()


def test_aiohttp_a_hang_up_after_the_request_is_not_not_sent(
    loop: EventLoop, hang_up_server: str
) -> None:
    """httpx-aiohttp alone calls a server that hung up "ConnectTimeout" (not sent: a task it
    may have created would be tried again); ours says the request went out."""
    http = httpx.Client(
        base_url=hang_up_server, transport=LoopTransport(AiohttpTransport(), loop), timeout=10
    )
    with pytest.raises(httpx.HTTPError) as caught:
        http.post("/create", json={"a": 1})
    assert not isinstance(caught.value, httpx.ConnectError | httpx.ConnectTimeout)
    assert isinstance(caught.value, httpx.RemoteProtocolError)
    http.close()


def test_aiohttp_a_refused_connection_is_not_sent(loop: EventLoop) -> None:
    """Nothing listens: a connect error, which the worker may retry safely."""
    with socket.create_server(("127.0.0.1", 0)) as free:
        port = free.getsockname()[1]
    http = httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        transport=LoopTransport(AiohttpTransport(), loop),
        timeout=5,
    )
    with pytest.raises(httpx.ConnectError):
        http.get("/")
    http.close()
