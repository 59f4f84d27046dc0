"""Tests of the simulator's IAM password login and of the tokens it issues (no network)."""

from __future__ import annotations

import asyncio
import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from htap_sync.simulator import SimulatorConfig, SimulatorState, make_app
from htap_sync.simulator.auth import Authenticator, sign
from htap_sync.simulator.cli import main, parse
from htap_sync.simulator.tokens import TokenStore
from tests.unit.test_simulator_app import CLI_PACE

PROJECT = "0123456789abcdef0123456789abcdef"
INSTANCE = "0f1e2d3c4b5a69788796a5b4c3d2e1f0in17"
SOURCE = "1a2b3c4d5e6f708192a3b4c5d6e7f809in07"
PATH = f"/v3/{PROJECT}/instances/{INSTANCE}/starrocks/databases/replication"
LOGIN = "/v3/auth/tokens"
DOMAIN, USER, PASSWORD = "acme_account", "sync_bot", "Pa55-word!"
T0 = datetime(2026, 11, 28, 14, 0, tzinfo=UTC)
IAM = SimulatorConfig(iam_domain=DOMAIN, iam_user=USER, iam_password=PASSWORD)
EXPIRED_BODY = {
    "error_code": "APIGW.0301",
    "error_msg": "Incorrect IAM authentication information: token expired",
}
WRONG_BODY = {
    "error": {"code": 401, "message": "The username or password is wrong.", "title": "Unauthorized"}
}


class Clock:
    """A settable aware clock."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        """The current fake time."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the time forward."""
        self.now += timedelta(seconds=seconds)


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

    def login(self, **overrides: str) -> httpx.Response:
        """POST a password login, with some of domain/user/password/project replaced."""
        return self.request("POST", LOGIN, json=login_body(**overrides))

    def token(self) -> str:
        """Log in with the right account and return the issued token."""
        response = self.login()
        assert response.status_code == 201, response.text
        return response.headers["X-Subject-Token"]

    def create(self, token: str, task_name: str = "task_orders_001") -> httpx.Response:
        """Create a task authenticated by ``token``."""
        return self.request(
            "POST", PATH, json=create_body(task_name), headers={"X-Auth-Token": token}
        )

    def list(self, token: str) -> httpx.Response:
        """List the instance's tasks authenticated by ``token``."""
        return self.request("GET", PATH, headers={"X-Auth-Token": token})


def login_body(
    domain: str = DOMAIN, user: str = USER, password: str = PASSWORD, project: str = PROJECT
) -> dict[str, Any]:
    """The documented password login body."""
    return {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"domain": {"name": domain}, "name": user, "password": password}
                },
            },
            "scope": {"project": {"id": project}},
        }
    }


def create_body(task_name: str) -> dict[str, str]:
    """A valid create body."""
    return {
        "source_instance_id": SOURCE,
        "source_database": "src_db",
        "target_database": "tgt_db",
        "task_name": task_name,
    }


def client_for(
    config: SimulatorConfig = IAM, clock: Clock | None = None
) -> tuple[AppClient, SimulatorState, Clock]:
    """An app with a fresh state and a settable clock, and both to inspect."""
    state = SimulatorState()
    clock = clock or Clock()
    return AppClient(make_app(config, state, clock=clock)), state, clock


# --- the login route ----------------------------------------------------------------------


def test_login_answers_201_with_subject_token_and_token_body() -> None:
    """The right account gets 201, a token in X-Subject-Token and IAM's token body."""
    client, state, _ = client_for()
    response = client.login()
    assert response.status_code == 201, response.text
    assert len(response.headers["X-Subject-Token"]) >= 32
    assert len(response.headers["X-Request-Id"]) == 32
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {
        "token": {
            "expires_at": "2026-11-29T14:00:00.000000Z",
            "issued_at": "2026-11-28T14:00:00.000000Z",
            "methods": ["password"],
            "project": {"id": PROJECT, "name": "cn-north-4"},
            "user": {"name": USER, "domain": {"name": DOMAIN}},
        }
    }
    assert (state.logins, state.login_failures) == (1, 0)


def test_expires_at_is_issue_time_plus_token_lifetime() -> None:
    """expires_at is the clock's time at login plus token_lifetime_s, to the microsecond."""
    config = SimulatorConfig(
        iam_domain=DOMAIN, iam_user=USER, iam_password=PASSWORD, token_lifetime_s=90.5
    )
    client, state, clock = client_for(config, Clock(T0 + timedelta(microseconds=7)))
    token = client.login().json()["token"]
    assert token["issued_at"] == "2026-11-28T14:00:00.000007Z"
    assert token["expires_at"] == "2026-11-28T14:01:30.500007Z"
    [issued] = state.tokens_issued()
    assert (issued.issued_at, issued.expires_at) == (clock.now, clock.now + timedelta(seconds=90.5))
    assert (issued.domain, issued.user, issued.project_id) == (DOMAIN, USER, PROJECT)


@pytest.mark.parametrize(
    "wrong",
    [{"domain": "other_account"}, {"user": "other_user"}, {"password": "Pa55-word"}],
    ids=["domain", "user", "password"],
)
def test_wrong_account_user_or_password_is_401(wrong: dict[str, str]) -> None:
    """A wrong account, user or password gets IAM's 401, no token, and is counted."""
    client, state, _ = client_for()
    response = client.login(**wrong)
    assert (response.status_code, response.json()) == (401, WRONG_BODY)
    assert "X-Subject-Token" not in response.headers
    assert len(response.headers["X-Request-Id"]) == 32
    assert PASSWORD not in response.text
    assert (state.logins, state.login_failures, state.tokens_issued()) == (0, 1, [])


def _without(path: tuple[str, ...]) -> dict[str, Any]:
    body = login_body()
    parent = body
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    return body


def _with(path: tuple[str, ...], value: object) -> dict[str, Any]:
    body = login_body()
    parent = body
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return body


USER_PATH = ("auth", "identity", "password", "user")


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"not json", "body"),
        (b"[]", "body"),
        (json.dumps({}).encode(), "auth"),
        (json.dumps(_without(("auth", "identity"))).encode(), "auth.identity"),
        (json.dumps(_without(("auth", "identity", "methods"))).encode(), "auth.identity.methods"),
        (
            json.dumps(_with(("auth", "identity", "methods"), ["token"])).encode(),
            "auth.identity.methods",
        ),
        (
            json.dumps(_with(("auth", "identity", "password"), "secret")).encode(),
            "auth.identity.password",
        ),
        (
            json.dumps(_without((*USER_PATH, "domain"))).encode(),
            "auth.identity.password.user.domain",
        ),
        (
            json.dumps(_with((*USER_PATH, "domain", "name"), "")).encode(),
            "auth.identity.password.user.domain.name",
        ),
        (json.dumps(_without((*USER_PATH, "name"))).encode(), "auth.identity.password.user.name"),
        (
            json.dumps(_with((*USER_PATH, "password"), 1234)).encode(),
            "auth.identity.password.user.password",
        ),
        (json.dumps(_without(("auth", "scope"))).encode(), "auth.scope"),
        (json.dumps(_with(("auth", "scope", "project"), None)).encode(), "auth.scope.project"),
        (
            json.dumps(login_body(project="not-a-project-id")).encode(),
            "auth.scope.project.id",
        ),
    ],
)
def test_malformed_login_body_is_400_naming_the_field(raw: bytes, field: str) -> None:
    """A malformed login body gets 400 in IAM's error shape, naming the field; no token."""
    client, state, _ = client_for()
    response = client.request("POST", LOGIN, content=raw)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["title"]) == (400, "Bad Request")
    assert error["message"].startswith(f"Invalid parameter: {field}: ")
    assert "X-Subject-Token" not in response.headers
    assert len(response.headers["X-Request-Id"]) == 32
    assert (state.logins, state.login_failures) == (0, 1)


def test_login_route_is_absent_without_an_iam_account() -> None:
    """Without an IAM account the login answers 404 APIGW.0101, like any unknown API."""
    client, state, _ = client_for(SimulatorConfig(token="static"))
    response = client.login()
    assert response.status_code == 404
    assert response.json()["error_code"] == "APIGW.0101"
    assert state.login_failures == 0


def test_only_post_logs_in() -> None:
    """GET on the login path is an unknown API (404 APIGW.0101)."""
    client, _, _ = client_for()
    response = client.request("GET", LOGIN)
    assert (response.status_code, response.json()["error_code"]) == (404, "APIGW.0101")


# --- issued tokens on the data-sync routes ------------------------------------------------


def test_fresh_token_is_accepted_by_create_and_list() -> None:
    """A token just issued authenticates a create and a list call."""
    client, state, _ = client_for()
    token = client.token()
    assert client.create(token).status_code == 200
    listed = client.list(token)
    assert listed.status_code == 200, listed.text
    assert listed.json()["total_count"] == "1"
    assert state.created == 1


def test_iam_account_turns_authentication_on() -> None:
    """With only an IAM account configured, a call without a token or with a made-up one is 401."""
    client, state, _ = client_for()
    missing = client.request("POST", PATH, json=create_body("task_orders_001"))
    made_up = client.create("not-a-token")
    assert missing.json()["error_msg"].endswith(": X-Auth-Token missing")
    assert made_up.json()["error_msg"].endswith(": X-Auth-Token invalid")
    assert (missing.status_code, made_up.status_code) == (401, 401)
    assert (state.created, state.expired_token_rejections) == (0, 0)


def test_token_is_valid_until_expires_at_and_refused_from_then_on() -> None:
    """A token works up to a microsecond before expires_at and gets APIGW.0301 from then on."""
    client, state, clock = client_for()
    token = client.token()
    clock.advance(86_400 - 1e-6)
    assert client.create(token, "task_before_expiry").status_code == 200
    clock.advance(1e-6)
    refused = client.create(token, "task_at_expiry")
    assert (refused.status_code, refused.json()) == (401, EXPIRED_BODY)
    assert len(refused.headers["X-Request-Id"]) == 32
    listed = client.list(token)
    assert (listed.status_code, listed.json()) == (401, EXPIRED_BODY)
    assert state.expired_token_rejections == 2
    assert state.created == 1


def test_two_logins_give_two_distinct_tokens_valid_side_by_side() -> None:
    """Each login issues a new token; the older stays valid until its own expiry."""
    client, state, clock = client_for()
    first = client.token()
    clock.advance(3_600)
    second = client.token()
    assert first != second
    assert client.create(first, "task_first").status_code == 200
    assert client.create(second, "task_second").status_code == 200
    clock.advance(86_400 - 3_600)
    assert client.create(first, "task_late_first").json() == EXPIRED_BODY
    assert client.create(second, "task_late_second").status_code == 200
    assert [t.expires_at for t in state.tokens_issued()] == [
        T0 + timedelta(days=1),
        T0 + timedelta(days=1, hours=1),
    ]
    assert (state.logins, state.expired_token_rejections) == (2, 1)


def test_static_token_never_expires_beside_issued_ones() -> None:
    """The config's static token stays valid while an issued token expires."""
    config = SimulatorConfig(
        token="static-token", iam_domain=DOMAIN, iam_user=USER, iam_password=PASSWORD
    )
    client, state, clock = client_for(config)
    issued = client.token()
    clock.advance(10 * 86_400)
    assert client.create("static-token").status_code == 200
    assert client.create(issued, "task_two").json() == EXPIRED_BODY
    assert state.expired_token_rejections == 1


def test_expired_token_with_a_valid_signature_passes_uncounted() -> None:
    """With AK/SK also configured, a valid signature is enough; the expired token is no refusal."""
    config = SimulatorConfig(
        ak="AK", sk="SK", iam_domain=DOMAIN, iam_user=USER, iam_password=PASSWORD
    )
    client, state, clock = client_for(config)
    token = client.token()
    clock.advance(86_400)
    raw = json.dumps(create_body("task_signed")).encode()
    headers = {
        "Host": "sim",
        "X-Sdk-Date": clock.now.strftime("%Y%m%dT%H%M%SZ"),
        "Content-Type": "application/json",
    }
    authorization = sign(
        ak="AK", sk="SK", method="POST", path=PATH, query=[], headers=headers, body=raw
    )
    headers = {**headers, "Authorization": authorization, "X-Auth-Token": token}
    response = client.request("POST", PATH, content=raw, headers=headers)
    assert response.status_code == 200, response.text
    assert state.expired_token_rejections == 0


def test_authenticator_without_a_store_ignores_issued_tokens() -> None:
    """An Authenticator given no TokenStore treats every token but the static one as invalid."""
    store = TokenStore()
    token, _ = store.issue(
        domain=DOMAIN, user=USER, project_id=PROJECT, now=T0, lifetime=timedelta(days=1)
    )
    config = SimulatorConfig(
        token="static-token", iam_domain=DOMAIN, iam_user=USER, iam_password=PASSWORD
    )
    checks = [
        Authenticator(config, clock=lambda: T0, tokens=tokens).failure(
            method="GET", path=PATH, query_string=b"", headers={"X-Auth-Token": token}, body=b""
        )
        for tokens in (None, store)
    ]
    assert checks == ["X-Auth-Token invalid", None]


# --- the snapshot -------------------------------------------------------------------------


def test_snapshot_counts_logins_and_shows_expiries_but_never_a_token() -> None:
    """/_sim/stats has the IAM counters and expiry times, and no token or password."""
    client, state, clock = client_for()
    tokens = [client.token(), client.token()]
    client.login(password="wrong")
    client.request("POST", LOGIN, content=b"{}")
    clock.advance(86_400)
    client.create(tokens[0])
    stats_response = client.request("GET", "/_sim/stats")
    stats = stats_response.json()
    assert stats == state.snapshot()
    assert stats["logins"] == 2
    assert stats["login_failures"] == 2
    assert stats["expired_token_rejections"] == 1
    assert stats["token_expiries"] == ["2026-11-29T14:00:00.000000Z"] * 2
    for secret in (*tokens, PASSWORD):
        assert secret not in stats_response.text
        assert secret not in repr(state.tokens_issued())
    assert PASSWORD not in repr(IAM)


# --- config and CLI -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"iam_user": USER}, "iam_domain/iam_user/iam_password: set all three or none"),
        ({"iam_user": USER, "iam_domain": DOMAIN}, "set all three or none"),
        ({"iam_user": "", "iam_domain": DOMAIN, "iam_password": PASSWORD}, "iam_user:"),
        ({"iam_password": 5}, "iam_password:"),
        ({"token_lifetime_s": 0}, "token_lifetime_s:"),
        ({"token_lifetime_s": -1.0}, "token_lifetime_s:"),
        ({"token_lifetime_s": math.inf}, "token_lifetime_s:"),
        ({"token_lifetime_s": math.nan}, "token_lifetime_s:"),
        ({"token_lifetime_s": True}, "token_lifetime_s:"),
    ],
)
def test_config_rejects_partial_account_and_bad_lifetime(
    fields: dict[str, Any], message: str
) -> None:
    """An incomplete IAM account or a non-positive, infinite or boolean lifetime is refused."""
    with pytest.raises(ValueError, match=re.escape(message)):
        SimulatorConfig(**fields)


def test_cli_iam_flags_parse_into_the_config() -> None:
    """--iam-domain/--iam-user/--iam-password/--token-lifetime-s land in the config."""
    args = parse(
        [
            "--iam-domain",
            DOMAIN,
            "--iam-user",
            USER,
            "--iam-password",
            PASSWORD,
            "--token-lifetime-s",
            "120.5",
        ]
    )
    assert args.config == SimulatorConfig(
        iam_domain=DOMAIN,
        iam_user=USER,
        iam_password=PASSWORD,
        token_lifetime_s=120.5,
        **CLI_PACE,
    )
    defaults = parse([]).config
    assert (defaults.iam_domain, defaults.iam_user, defaults.iam_password) == (None, None, None)
    assert defaults.token_lifetime_s == 86_400.0
    assert not defaults.iam_enabled


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--iam-user", USER], "set all three or none"),
        (["--token-lifetime-s", "0"], "token_lifetime_s:"),
        (["--token-lifetime-s", "soon"], "--token-lifetime-s"),
    ],
)
def test_cli_rejects_bad_iam_options(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A partial account or a bad lifetime exits with status 2 and says which."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
