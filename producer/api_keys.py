"""API keys of the ingress: ``X-API-Key`` or ``Authorization: Bearer``, compared in constant
time against every configured key."""

from __future__ import annotations

import hashlib
import hmac

from starlette.requests import Request

from htap_sync.producer.problems import Problem


class KeyCheck:
    """Checks a request's API key against every configured key, in constant time."""

    def __init__(self, keys: list[str], *, enabled: bool) -> None:
        # Digests, so that every comparison is between equal lengths: no length leaks either.
        self._digests = [hashlib.sha256(k.encode()).digest() for k in keys]
        self.enabled = enabled

    @staticmethod
    def presented(request: Request) -> str | None:
        """The key the request carries: ``X-API-Key``, else ``Authorization: Bearer``."""
        key = request.headers.get("x-api-key")
        if key is not None:
            return key
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        return (value.strip() or None) if scheme.lower() == "bearer" else None

    def matches(self, key: str) -> bool:
        """True when ``key`` equals a configured key; every key is compared, match or not."""
        # Starlette decodes header bytes as latin-1: encoding back gives the bytes sent.
        given = hashlib.sha256(key.encode("latin-1", errors="replace")).digest()
        found = False
        for expected in self._digests:
            found |= hmac.compare_digest(given, expected)
        return found

    def require(self, request: Request) -> None:
        """Raise a 401 Problem unless auth is off or the request carries a valid key."""
        if not self.enabled:
            return
        key = self.presented(request)
        if key is not None and self.matches(key):
            return
        rule = "required" if key is None else "not accepted"
        raise Problem(
            401,
            "X-API-Key",
            f"{rule}: send a valid key as X-API-Key or Authorization: Bearer",
            headers={"WWW-Authenticate": 'Bearer realm="htap-sync", ApiKey header="X-API-Key"'},
        )
