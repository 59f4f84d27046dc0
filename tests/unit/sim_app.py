"""What the simulator's unit tests share: ids, a valid body, a client into the ASGI app
(no network), an error check and the standalone CLI's pace."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
from starlette.applications import Starlette

from htap_sync.simulator import SimulatorConfig, SimulatorState, make_app

PROJECT = "0123456789abcdef0123456789abcdef"
INSTANCE = "0f1e2d3c4b5a69788796a5b4c3d2e1f0in17"
OTHER_INSTANCE = "590031445ef845bb912d7fc8243db80cin17"
SOURCE = "1a2b3c4d5e6f708192a3b4c5d6e7f809in07"
PATH = f"/v3/{PROJECT}/instances/{INSTANCE}/starrocks/databases/replication"
HEX32 = re.compile(r"[0-9a-f]{32}")


class AppClient:
    """Synchronous calls into an ASGI app through httpx.ASGITransport (no network)."""

    def __init__(self, app: Starlette) -> None:
        self._app = app

    def request(self, method: str, url: str, **kwargs: object) -> httpx.Response:
        """Send one request on a fresh event loop and return the read response."""

        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self._app)
            async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
                return await client.request(method, url, **kwargs)  # type: ignore[arg-type]

        return asyncio.run(send())

    def get(self, url: str, **kwargs: object) -> httpx.Response:
        """GET ``url``."""
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: object) -> httpx.Response:
        """POST ``url``."""
        return self.request("POST", url, **kwargs)


def body(**overrides: object) -> dict[str, object]:
    """A valid create body, with some fields replaced (None removes a field)."""
    base: dict[str, object] = {
        "source_instance_id": SOURCE,
        "source_database": "src_db",
        "target_database": "tgt_db",
        "task_name": "task_orders_001",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def client_for(config: SimulatorConfig | None = None) -> tuple[AppClient, SimulatorState]:
    """An app with a fresh state, and the state to inspect."""
    state = SimulatorState()
    return AppClient(make_app(config or SimulatorConfig(), state)), state


def assert_error(response: httpx.Response, status: int, code: str) -> str:
    """Check an error answer's status and code; return its message."""
    assert response.status_code == status, response.text
    payload = response.json()
    assert set(payload) == {"error_code", "error_msg"}
    assert payload["error_code"] == code
    message: str = payload["error_msg"]
    return message


# The standalone simulator's pace (its CLI defaults; SimulatorConfig's own are 0).
CLI_PACE: dict[str, Any] = {
    "stage_wait_s": 1.0,
    "stage_full_s": 1.0,
    "job_appear_delay_s": 0.5,
    "op_job_s": 1.0,
}
