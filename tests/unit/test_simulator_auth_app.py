"""Tests of the simulator's authentication through the app: accepted calls, 401s, admin routes."""

from __future__ import annotations

import asyncio
import json

import httpx
from starlette.applications import Starlette

from htap_sync.simulator import SimulatorConfig, SimulatorState, make_app
from tests.unit.sim_signing import (
    AK,
    BODY,
    HOST,
    INSTANCE,
    PATH,
    PROJECT,
    SDK_DATE,
    SIGNED_AT,
    SK,
    VECTOR_AUTHORIZATION,
    VECTOR_HEADERS,
    sdk_sign,
)

# --- through the app --------------------------------------------------------------------


class AppClient:
    """Synchronous calls into an ASGI app through httpx.ASGITransport (no network)."""

    def __init__(self, app: Starlette, base_url: str) -> None:
        self._app = app
        self._base_url = base_url

    def request(self, method: str, url: str, **kwargs: object) -> httpx.Response:
        """Send one request on a fresh event loop and return the read response."""

        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self._app)
            async with httpx.AsyncClient(transport=transport, base_url=self._base_url) as client:
                return await client.request(method, url, **kwargs)  # type: ignore[arg-type]

        return asyncio.run(send())

    def get(self, url: str, **kwargs: object) -> httpx.Response:
        """GET ``url``."""
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: object) -> httpx.Response:
        """POST ``url``."""
        return self.request("POST", url, **kwargs)


def vector_client(config: SimulatorConfig, state: SimulatorState) -> AppClient:
    """A client whose Host is the vector's, for an app whose clock is the vector's date."""
    return AppClient(make_app(config, state, clock=lambda: SIGNED_AT), f"https://{HOST}")


def test_app_accepts_vector_request() -> None:
    """The vector request, sent over HTTP to the app, creates the task."""
    state = SimulatorState()
    client = vector_client(SimulatorConfig(ak=AK, sk=SK), state)
    headers = {k: v for k, v in VECTOR_HEADERS.items() if k != "Host"}
    response = client.post(
        PATH, content=BODY, headers={**headers, "Authorization": VECTOR_AUTHORIZATION}
    )
    assert response.status_code == 200, response.text
    assert state.creates_for(PROJECT, INSTANCE, "task_orders_001") == 1


def test_app_accepts_sdk_signed_list_call() -> None:
    """A list call signed by the SDK signer passes the app's check."""
    client = vector_client(SimulatorConfig(ak=AK, sk=SK), SimulatorState())
    sent = sdk_sign("GET", PATH, [("limit", "10"), ("offset", "0")], {"X-Sdk-Date": SDK_DATE}, b"")
    sent.pop("Host")
    response = client.get(PATH, params={"limit": "10", "offset": "0"}, headers=sent)
    assert response.status_code == 200, response.text
    assert response.json() == {"total_count": "0", "replications": []}


def test_app_answers_401_without_leaking_secrets() -> None:
    """A bad signature gets 401 APIGW.0301, an X-Request-Id, and no secret in the body."""
    state = SimulatorState()
    config = SimulatorConfig(ak=AK, sk=SK, token="very-secret-token")
    client = vector_client(config, state)
    bad = VECTOR_AUTHORIZATION[:-1] + ("0" if VECTOR_AUTHORIZATION[-1] != "0" else "1")
    response = client.post(
        PATH, content=BODY, headers={"Authorization": bad, "X-Sdk-Date": SDK_DATE}
    )
    assert response.status_code == 401
    payload = response.json()
    assert payload["error_code"] == "APIGW.0301"
    assert payload["error_msg"].startswith("Incorrect IAM authentication information: ")
    assert SK not in response.text and "very-secret-token" not in response.text
    assert len(response.headers["X-Request-Id"]) == 32
    assert state.create_calls == 1 and state.created == 0


def test_app_401_on_list_call() -> None:
    """The list call is authenticated too."""
    client = vector_client(SimulatorConfig(token="tok"), SimulatorState())
    response = client.get(PATH, headers={"X-Auth-Token": "wrong"})
    assert response.status_code == 401
    assert json.loads(response.text)["error_code"] == "APIGW.0301"


def test_admin_routes_need_no_auth() -> None:
    """/_sim/stats and /_sim/healthz answer without credentials even when auth is on."""
    client = vector_client(SimulatorConfig(token="tok", ak=AK, sk=SK), SimulatorState())
    assert client.get("/_sim/healthz").json() == {"ok": True}
    assert client.get("/_sim/stats").status_code == 200
