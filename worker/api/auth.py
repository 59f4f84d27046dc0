"""Credentials on outgoing requests, as ``httpx.Auth``: exactly one of three modes.

* a static IAM token (``HTAP_SYNC_AUTH_TOKEN``): :class:`TokenAuth`;
* AK/SK signing (``HTAP_SYNC_AK``/``HTAP_SYNC_SK``): :class:`worker.signing.AkSkAuth`;
* IAM password tokens shared by the fleet (``HTAP_SYNC_IAM_*``): :mod:`worker.iam`.
"""

from __future__ import annotations

from collections.abc import Generator

import httpx
import redis
from pydantic import SecretStr

from htap_sync.common.settings import Settings
from htap_sync.worker.api.iam import make_iam_auth
from htap_sync.worker.api.signing import AkSkAuth


class TokenAuth(httpx.Auth):
    """Sends a static IAM token as ``X-Auth-Token``; the token never appears in ``repr``."""

    def __init__(self, token: SecretStr) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the header and send."""
        request.headers["X-Auth-Token"] = self._token.get_secret_value()
        yield request

    def __repr__(self) -> str:
        return "TokenAuth(token=SecretStr('**********'))"


def make_auth(
    settings: Settings, client: redis.Redis, transport: httpx.BaseTransport | None = None
) -> tuple[httpx.Auth, list[httpx.Client]]:
    """The configured mode's auth, and any HTTP client it opened (to close with the worker).

    Raises:
        SettingsError: no mode is configured.
    """
    mode = settings.auth.require_mode()
    if mode == "token":
        assert settings.auth.token is not None
        return TokenAuth(settings.auth.token), []
    if mode == "aksk":
        assert settings.auth.ak is not None and settings.auth.sk is not None
        return AkSkAuth(settings.auth.ak, settings.auth.sk), []
    iam_http = httpx.Client(
        base_url=str(settings.auth.iam_endpoint).rstrip("/"),
        timeout=httpx.Timeout(settings.cloud.request_timeout_s),
        verify=True,
        transport=transport,
        headers={"User-Agent": "taurus-htap-sync"},
    )
    return make_iam_auth(settings, client, iam_http), [iam_http]
