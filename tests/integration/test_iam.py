"""IAM tokens shared through real Redis: one login per lifetime, renewal by one worker."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from htap_sync.common.connections import make_redis
from htap_sync.common.errors import AuthFailed, TransportError
from htap_sync.common.settings import Settings, load_settings
from htap_sync.worker.api.iam import IamTokenAuth, Token, TokenCache, login

PROJECT = "0123456789abcdef0123456789abcdef"


class Clock:
    """Seconds since the epoch, moved by the test."""

    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


class Iam:
    """Counts logins; each issues a new token valid for ``lifetime_s`` on ``clock``."""

    def __init__(self, clock: Clock, lifetime_s: float = 100.0) -> None:
        self.clock, self.lifetime_s, self.logins = clock, lifetime_s, 0
        self.gate = threading.Event()
        self.gate.set()

    def fetch(self) -> Token:
        self.gate.wait(5)
        self.logins += 1
        return Token(SecretStr(f"token-{self.logins}"), self.clock() + self.lifetime_s)


@pytest.fixture
def redis_client(redis_url: str) -> Any:
    """A client on the session's Redis."""
    client = make_redis(load_settings({"redis_url": redis_url}, env_file=None))
    yield client
    client.close()


def _cache(client: Any, key: str, iam: Iam, clock: Clock) -> TokenCache:
    return TokenCache(client, key, iam.fetch, clock=clock, sleep=lambda s: None)


def test_many_callers_one_login(redis_client: Any) -> None:
    """Sixteen threads of two processes asking at once cause a single login."""
    clock, key = Clock(), f"iam-test:{uuid.uuid4().hex}"
    iam = Iam(clock)
    iam.gate.clear()  # hold the first login until everyone is asking
    caches = [_cache(redis_client, key, iam, clock) for _ in range(2)]
    seen: list[str] = []

    def ask(cache: TokenCache) -> None:
        seen.append(cache.current().get_secret_value())

    threads = [threading.Thread(target=ask, args=(caches[i % 2],)) for i in range(16)]
    for t in threads:
        t.start()
    iam.gate.set()
    for t in threads:
        t.join(10)
    assert iam.logins == 1
    assert set(seen) == {"token-1"}
    assert redis_client.ttl(key) > 0  # the cached token expires with the token


def test_one_worker_renews_ahead_of_expiry_the_others_carry_on(redis_client: Any) -> None:
    """Past the renewal point (a quarter of the lifetime early) the first asker logs in again;
    another process keeps the still-valid token without logging in."""
    clock, key = Clock(), f"iam-test:{uuid.uuid4().hex}"
    iam = Iam(clock, lifetime_s=100)
    first, second = _cache(redis_client, key, iam, clock), _cache(redis_client, key, iam, clock)
    assert first.current().get_secret_value() == "token-1"
    assert second.current().get_secret_value() == "token-1"
    clock.now += 74
    assert first.current().get_secret_value() == "token-1"  # not yet due
    clock.now += 2  # due: 75 s into a 100 s token
    redis_client.set(f"{key}:renewing", "someone-else", ex=30)  # another worker renews...
    assert second.current().get_secret_value() == "token-1"  # ...so this one carries on
    redis_client.delete(f"{key}:renewing")
    assert first.current().get_secret_value() == "token-2"
    assert second.current().get_secret_value() == "token-2"
    assert iam.logins == 2


def test_a_rejected_token_is_renewed_once(redis_client: Any) -> None:
    """A 401 renews the token, unless another worker has renewed it already."""
    clock, key = Clock(), f"iam-test:{uuid.uuid4().hex}"
    iam = Iam(clock)
    cache = _cache(redis_client, key, iam, clock)
    stale = cache.current()
    assert cache.rejected(stale).get_secret_value() == "token-2"
    assert cache.rejected(stale).get_secret_value() == "token-2"  # already renewed by then
    assert iam.logins == 2


def _settings(**extra: Any) -> Settings:
    return load_settings(
        {
            "iam_endpoint": "https://iam.cn-north-4.myhuaweicloud.com",
            "iam_user": "bot",
            "iam_password": "pw-secret",
            "iam_domain": "acct",
            **extra,
        },
        env_file=None,
    )


def _iam_http(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.Client:
    return httpx.Client(
        base_url="https://iam.cn-north-4.myhuaweicloud.com", transport=httpx.MockTransport(handler)
    )


def test_login_sends_the_documented_body_and_reads_the_answer() -> None:
    """The password body is scoped to the project; 201 gives X-Subject-Token and expires_at."""
    bodies: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        import json

        bodies.append(json.loads(request.content))
        return httpx.Response(
            201,
            headers={"X-Subject-Token": "MIIE-token"},
            json={"token": {"expires_at": "2030-01-01T00:00:00.000000Z"}},
        )

    token = login(_iam_http(handler), _settings(), PROJECT)
    assert token.value.get_secret_value() == "MIIE-token"
    assert token.expires_at == datetime(2030, 1, 1, tzinfo=UTC).timestamp()
    identity = bodies[0]["auth"]["identity"]
    assert identity["methods"] == ["password"]
    assert identity["password"]["user"] == {
        "domain": {"name": "acct"},
        "name": "bot",
        "password": "pw-secret",
    }
    assert bodies[0]["auth"]["scope"] == {"project": {"id": PROJECT}}


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (lambda r: httpx.Response(401, json={"error": {"code": 401}}), AuthFailed),
        (lambda r: httpx.Response(503), TransportError),
        (lambda r: httpx.Response(201, json={}), TransportError),  # no token in a 201
    ],
)
def test_login_failures_are_classified(answer: Any, expected: type[Exception]) -> None:
    """Refused credentials are permanent; an unavailable IAM is retryable (nothing was sent)."""
    with pytest.raises(expected) as info:
        login(_iam_http(answer), _settings(), PROJECT)
    assert "pw-secret" not in str(info.value)


def test_auth_flow_renews_once_on_401(redis_client: Any) -> None:
    """A 401 from the API renews the token and resends once; a second 401 is the answer."""
    clock, key = Clock(), f"iam-test:{uuid.uuid4().hex}"
    iam = Iam(clock)
    cache = _cache(redis_client, key, iam, clock)
    sent: list[str] = []

    def api(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers["X-Auth-Token"])
        return httpx.Response(401 if len(sent) in (1, 3, 4) else 200, json={})

    http = httpx.Client(
        base_url="https://api.example",
        transport=httpx.MockTransport(api),
        auth=IamTokenAuth(lambda project: cache, None),
    )
    assert http.get(f"/v3/{PROJECT}/x").status_code == 200
    assert sent == ["token-1", "token-2"]
    assert http.get(f"/v3/{PROJECT}/x").status_code == 401
    assert sent[2:] == ["token-2", "token-3"]
