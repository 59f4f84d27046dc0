"""The HTTP ingress over real HTTP: API keys, auth off, and the `htap-sync api` command."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from htap_sync.common.errors import SettingsError
from htap_sync.common.settings import Settings
from htap_sync.devstack import Service, free_port, wait_until
from htap_sync.producer.api import Producer
from htap_sync.producer.ingress import make_ingress
from tests.integration.harness import child_env
from tests.integration.ingress.served import (
    AUTH,
    KEY,
    SECOND_KEY,
    Served,
    errors_of,
    request_n,
)


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
                c.post("/v1/replications", json=request_n(1)),
                c.get(f"/v1/replications/tk_{'0' * 32}"),
            ):
                assert response.status_code == 401, headers
                assert response.headers["www-authenticate"].startswith("Bearer")
                assert errors_of(response)[0]["field"] == "X-API-Key"
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
        assert c.post("/v1/replications", json=request_n(1)).status_code == 202


def test_auth_off_serves_without_keys(settings: Settings, producer: Producer) -> None:
    """HTAP_SYNC_API_AUTH=off: no key configured, none required, none in the document."""
    open_settings = settings.replace(api_auth="off", api_keys=None)
    with Served(make_ingress(open_settings, producer)) as served, served.client() as c:
        assert c.post("/v1/replications", json=request_n(1)).status_code == 202
        document = c.get("/openapi.json").json()
    post = document["paths"]["/v1/replications"]["post"]
    assert "security" not in post and "401" not in post["responses"]
    assert "securitySchemes" not in document.get("components", {})


def test_the_app_refuses_to_build_without_keys(settings: Settings, producer: Producer) -> None:
    """Auth on and no key: make_ingress raises the SettingsError naming HTAP_SYNC_API_KEYS."""
    keyless = settings.replace(api_keys=None)
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
            f"{url}/v1/replications", json=request_n(1), headers=AUTH, trust_env=False
        )
        assert response.status_code == 202, response.text
    finally:
        code = service.stop()
    # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught: -15 is a clean stop.
    assert code in (0, -15), service.log_tail()
    log = service.log_path.read_text()
    assert "Finished server process" in log
    assert KEY not in log
