"""Tests of the tokens the simulator's IAM login issues, on the data-sync routes and in
the snapshot (no network)."""

from __future__ import annotations

import json
from datetime import timedelta

from htap_sync.simulator import SimulatorConfig
from htap_sync.simulator.auth import Authenticator, sign
from htap_sync.simulator.tokens import TokenStore
from tests.unit.sim_iam import (
    DOMAIN,
    EXPIRED_BODY,
    IAM,
    LOGIN,
    PASSWORD,
    PATH,
    PROJECT,
    T0,
    USER,
    client_for,
    create_body,
)

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
