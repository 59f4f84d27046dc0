"""IAM password tokens shared by the fleet: one login per token lifetime, not one per worker.

The token of each project is cached in Redis under its own key, with a TTL, and in each
process. Ahead of expiry (a quarter of the lifetime, at most 40 minutes, as the SDK does) one
worker takes a short lock and logs in again while the others keep using the current token;
a worker that has no valid token at all waits briefly for the lock holder instead of logging
in too. A 401 / ``APIGW.0301`` renews once, unless another worker renewed already.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import httpx
import redis
from pydantic import SecretStr

from htap_sync.common.errors import AuthFailed, TransportError
from htap_sync.common.keys import Keys
from htap_sync.common.scripts import script
from htap_sync.common.settings import Settings

MAX_MARGIN_S = 40 * 60
LOCK_S = 30
WAIT_FOR_HOLDER_S = 10.0


@dataclass(frozen=True)
class Token:
    """An IAM token and when it ends (seconds since the epoch)."""

    value: SecretStr
    expires_at: float

    def renew_at(self, issued_at: float) -> float:
        """When to log in again: a quarter of the lifetime early, at most 40 minutes."""
        margin = min(MAX_MARGIN_S, (self.expires_at - issued_at) / 4)
        return self.expires_at - margin


def login_body(settings: Settings, project_id: str) -> dict[str, Any]:
    """The documented password-login body, scoped to one project."""
    assert settings.auth.iam_password is not None
    return {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "domain": {"name": settings.auth.iam_domain},
                        "name": settings.auth.iam_user,
                        "password": settings.auth.iam_password.get_secret_value(),
                    }
                },
            },
            "scope": {"project": {"id": project_id}},
        }
    }


def login(http: httpx.Client, settings: Settings, project_id: str) -> Token:
    """``POST /v3/auth/tokens``; 201 with ``X-Subject-Token`` and ``token.expires_at``.

    Raises:
        AuthFailed: the credentials were refused (permanent).
        TransportError: IAM unreachable or failing; nothing was sent to the data-sync API.
    """
    try:
        response = http.post("/v3/auth/tokens", json=login_body(settings, project_id))
    except httpx.HTTPError as exc:
        raise TransportError(f"IAM login not possible: {type(exc).__name__}") from exc
    request_id = response.headers.get("X-Request-Id")
    if response.status_code in (400, 401, 403, 404):
        raise AuthFailed(
            f"IAM login refused ({response.status_code})",
            http_status=response.status_code,
            request_id=request_id,
        )
    token = response.headers.get("X-Subject-Token")
    try:
        expires = datetime.fromisoformat(
            response.json()["token"]["expires_at"].replace("Z", "+00:00")
        )
    except (ValueError, KeyError, TypeError):
        expires = None
    if response.status_code != 201 or not token or expires is None:
        raise TransportError(
            f"IAM login failed ({response.status_code})",
            http_status=response.status_code,
            request_id=request_id,
        )
    return Token(SecretStr(token), expires.timestamp())


# Compare-and-delete: drop the cached token only if it is still the one that was refused.
class TokenCache:
    """The token of one project, shared through Redis.

    Args:
        client: a ``decode_responses=True`` Redis client.
        key: where the token lives.
        fetch: logs in and returns a new token.
        clock: seconds since the epoch.
        sleep: how waits for another worker's login are slept.
    """

    def __init__(
        self,
        client: redis.Redis,
        key: str,
        fetch: Callable[[], Token],
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._redis = client
        self._key = key
        self._lock_key = f"{key}:renewing"
        self._fetch = fetch
        self._clock = clock
        self._sleep = sleep
        self._mutex = threading.Lock()
        self._local: tuple[str, float, float] | None = None  # token, renew_at, expires_at
        self._drop_if = script(client, __name__, "token_drop_if.lua")
        self.logins = 0

    def _read(self) -> tuple[str, float, float] | None:
        h = cast(dict[str, str], self._redis.hgetall(self._key))
        if not h:
            return None
        return h["token"], float(h["renew_at"]), float(h["expires_at"])

    def _renew(self) -> tuple[str, float, float]:
        now = self._clock()
        token = self._fetch()
        self.logins += 1
        entry = (token.value.get_secret_value(), token.renew_at(now), token.expires_at)
        ttl_ms = max(1, int((token.expires_at - now) * 1000))
        pipe = self._redis.pipeline()
        pipe.hset(
            self._key, mapping={"token": entry[0], "renew_at": entry[1], "expires_at": entry[2]}
        )
        pipe.pexpire(self._key, ttl_ms)
        pipe.delete(self._lock_key)
        pipe.execute()
        return entry

    def _lock(self) -> bool:
        return bool(self._redis.set(self._lock_key, uuid.uuid4().hex, nx=True, ex=LOCK_S))

    def current(self) -> SecretStr:
        """A valid token: cached, renewed ahead of expiry by one worker, or fetched."""
        with self._mutex:
            now = self._clock()
            if self._local and now < self._local[1]:
                return SecretStr(self._local[0])
            shared = self._read()
            if shared and now < shared[1]:
                self._local = shared
            elif shared and now < shared[2]:
                # Due for renewal but still valid: one worker renews, the rest carry on.
                self._local = self._renew() if self._lock() else shared
            else:
                self._local = self._wait_or_renew(now)
            return SecretStr(self._local[0])

    def _wait_or_renew(self, now: float) -> tuple[str, float, float]:
        if self._lock():
            return self._renew()
        deadline = now + WAIT_FOR_HOLDER_S
        while self._clock() < deadline:
            self._sleep(0.05)  # another worker is logging in: its token arrives shortly
            shared = self._read()
            if shared and self._clock() < shared[2]:
                return shared
        return self._renew()  # the holder died mid-login

    def rejected(self, token: SecretStr) -> SecretStr:
        """The API refused ``token``: drop it (unless renewed meanwhile) and get another."""
        with self._mutex:
            self._local = None
            self._drop_if(keys=[self._key], args=[token.get_secret_value()])
        return self.current()


class IamTokenAuth(httpx.Auth):
    """Sends the project's IAM token as ``X-Auth-Token``; renews once on a 401.

    Args:
        caches: the token cache of a project (made on first use).
        default_project: for paths that name no project.
    """

    def __init__(self, caches: Callable[[str], TokenCache], default_project: str | None) -> None:
        self._caches = caches
        self._default = default_project

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the token; on 401, renew it once and send again (a 401 means nothing ran)."""
        parts = request.url.path.split("/")
        project = parts[2] if len(parts) > 2 and len(parts[2]) == 32 else self._default
        if project is None:
            raise AuthFailed("no project to scope an IAM token to")
        cache = self._caches(project)
        token = cache.current()
        request.headers["X-Auth-Token"] = token.get_secret_value()
        response = yield request
        if response.status_code == 401:
            request.headers["X-Auth-Token"] = cache.rejected(token).get_secret_value()
            yield request

    def __repr__(self) -> str:
        return "IamTokenAuth()"


def make_iam_auth(settings: Settings, client: redis.Redis, iam_http: httpx.Client) -> IamTokenAuth:
    """IAM auth for a worker process: one cache per project, all in Redis."""
    caches: dict[str, TokenCache] = {}
    lock = threading.Lock()
    identity = json.dumps(
        [str(settings.auth.iam_endpoint), settings.auth.iam_domain, settings.auth.iam_user]
    )
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]

    def cache_for(project_id: str) -> TokenCache:
        with lock:
            if project_id not in caches:
                key = Keys(settings.key_prefix).iam_token(digest, project_id)
                caches[project_id] = TokenCache(
                    client, key, lambda: login(iam_http, settings, project_id)
                )
            return caches[project_id]

    return IamTokenAuth(cache_for, settings.cloud.project_id)
