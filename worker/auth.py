"""Credentials on outgoing requests, as ``httpx.Auth`` (a static IAM token for now)."""

from __future__ import annotations

from collections.abc import Generator

import httpx
from pydantic import SecretStr


class TokenAuth(httpx.Auth):
    """Sends an IAM token as ``X-Auth-Token``; the token never appears in ``repr``."""

    def __init__(self, token: SecretStr) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the header and send."""
        request.headers["X-Auth-Token"] = self._token.get_secret_value()
        yield request

    def __repr__(self) -> str:
        return "TokenAuth(token=SecretStr('**********'))"
