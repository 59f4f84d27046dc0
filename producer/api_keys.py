"""API keys of the ingress: ``X-API-Key`` or ``Authorization: Bearer``, compared in constant
time against every configured key.

:class:`KeyCheck` is a FastAPI security dependency of the keyed routes: it runs before the body
is read, and (with :data:`BEARER`) puts both ways of sending a key in the OpenAPI document and
behind the Authorize button of ``/docs``.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi.security import APIKeyHeader, HTTPBearer
from starlette.requests import HTTPConnection

from htap_sync.producer.problems import Problem

# Documents ``Authorization: Bearer`` beside X-API-Key; KeyCheck reads that header itself.
BEARER = HTTPBearer(scheme_name="Bearer", auto_error=False)


class KeyCheck(APIKeyHeader):
    """Checks a request's API key against every configured key, in constant time.

    One dependency for both headers (``X-API-Key``, else ``Authorization: Bearer``), so that
    a request pays for one dependency, not one per header.
    """

    def __init__(self, keys: list[str]) -> None:
        # auto_error=False: a missing key is answered here, in the ingress's error shape.
        super().__init__(name="X-API-Key", scheme_name="ApiKey", auto_error=False)
        # Digests, so that every comparison is between equal lengths: no length leaks either.
        self._digests = [hashlib.sha256(k.encode()).digest() for k in keys]

    @staticmethod
    def presented(request: HTTPConnection) -> str | None:
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

    async def __call__(self, request: HTTPConnection) -> None:
        """Raise a 401 Problem unless the request carries a valid key."""
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
