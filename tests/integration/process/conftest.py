"""Fixtures of the process_ticket tests: their own settings (no simulator), a rig, a clock."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from htap_sync.common.connections import make_redis, make_store
from htap_sync.common.settings import Settings, load_settings
from htap_sync.worker.api.aio import EventLoop, LoopTransport
from htap_sync.worker.api.client import TaurusClient
from tests.integration.process.worker_rig import BASE_URL, RESULT_TTL_S, Rig
from tests.scripted_api import FakeClock, ScriptedApi


@pytest.fixture
def settings(redis_url: str) -> Settings:
    """These tests' settings: their own key prefix, 3 attempts, lease 15 s; no simulator needed."""
    return load_settings(
        {
            "redis_url": redis_url,
            "key_prefix": f"test-proc-{uuid.uuid4().hex[:12]}",
            "max_attempts": 3,
            "request_timeout_s": 5,
            "redis_wait_timeout_s": 0.05,
            "visibility_timeout_s": 60,
            "backoff_base_s": 2.0,
            "backoff_max_s": 30.0,
            "result_ttl_s": RESULT_TTL_S,
        },
        env_file=None,
    )


@pytest.fixture(params=["single", "batched"])
def rig(settings: Settings, request: pytest.FixtureRequest) -> Iterator[Rig]:
    """A worker's collaborators on the real Redis and a scripted API; each delivery goes as
    the single task makes it (``process_ticket``, a sync transport) or as the batch task does
    (``process_batch`` of a batch of one, its calls through the event-loop bridge of
    ``worker.aio``)."""
    api = ScriptedApi()
    client = make_redis(settings)
    loop = EventLoop() if request.param == "batched" else None
    transport: httpx.BaseTransport = httpx.MockTransport(api)
    if loop is not None:
        transport = LoopTransport(httpx.MockTransport(api), loop)
    http = httpx.Client(base_url=BASE_URL, transport=transport)
    together = transport if isinstance(transport, LoopTransport) else None
    try:
        store = make_store(settings, client)
        yield Rig(settings, client, store, api, TaurusClient(http, together=together), together)
    finally:
        http.close()
        client.close()
        if loop is not None:
            loop.close()


@pytest.fixture
def clock() -> FakeClock:
    """A clock the test moves by hand."""
    return FakeClock()
