"""Tests of the simulator's IAM password login route, config and CLI (no network)."""

from __future__ import annotations

import json
import math
import re
from datetime import timedelta
from typing import Any

import pytest

from htap_sync.simulator import SimulatorConfig
from htap_sync.simulator.cli import main, parse
from tests.unit.sim_app import CLI_PACE
from tests.unit.sim_iam import (
    DOMAIN,
    LOGIN,
    PASSWORD,
    PROJECT,
    T0,
    USER,
    WRONG_BODY,
    Clock,
    client_for,
    login_body,
)

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
