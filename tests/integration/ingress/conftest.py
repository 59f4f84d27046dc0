"""Fixtures of the ingress tests: two keys and small limits, the served ingress, a client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from htap_sync.common.settings import Settings
from htap_sync.producer.api import Producer
from htap_sync.producer.ingress import make_ingress
from tests.integration.ingress.served import AUTH, KEY, MAX_BODY, MAX_ITEMS, SECOND_KEY, Served


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
