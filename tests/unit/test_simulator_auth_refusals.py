"""Tests of the simulator's authentication: what it refuses (clock skew, tampering, unsigned
host), token auth, and both together."""

from __future__ import annotations

from datetime import timedelta

import pytest

from htap_sync.simulator import SimulatorConfig
from htap_sync.simulator.auth import (
    Authenticator,
    canonical_request,
    signature,
    string_to_sign,
)
from tests.unit.sim_signing import (
    AK,
    BODY,
    PATH,
    SDK_DATE,
    SIGNED_AT,
    SK,
    VECTOR_AUTHORIZATION,
    VECTOR_HEADERS,
    at,
    check,
)


@pytest.mark.parametrize("skew", [timedelta(minutes=15), -timedelta(minutes=15)])
def test_date_exactly_15_minutes_off_is_accepted(skew: timedelta) -> None:
    """A clock 15 minutes ahead of or behind X-Sdk-Date is still inside the window."""
    assert check(at(SIGNED_AT + skew)) is None


@pytest.mark.parametrize(
    "skew", [timedelta(minutes=15, seconds=1), -timedelta(minutes=15, seconds=1)]
)
def test_date_more_than_15_minutes_off_is_rejected(skew: timedelta) -> None:
    """A signature dated more than 15 minutes from now is refused."""
    assert check(at(SIGNED_AT + skew)) == "X-Sdk-Date more than 15 minutes off"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"body": BODY.replace(b"src_db", b"src_dc")}, "signature mismatch"),
        ({"path": PATH.replace("in17", "in18")}, "signature mismatch"),
        ({"method": "PUT"}, "signature mismatch"),
        ({"query_string": b"limit=1"}, "signature mismatch"),
        (
            {
                "headers": {
                    **VECTOR_HEADERS,
                    "X-Language": "zh-cn",
                    "Authorization": VECTOR_AUTHORIZATION,
                }
            },
            "signature mismatch",
        ),
        (
            {
                "headers": {
                    **VECTOR_HEADERS,
                    "Authorization": VECTOR_AUTHORIZATION.replace("QTW", "XTW"),
                }
            },
            "unknown access key",
        ),
        (
            {"headers": {**VECTOR_HEADERS, "Authorization": "Bearer abc"}},
            "Authorization is not SDK-HMAC-SHA256",
        ),
        (
            {
                "headers": {k: v for k, v in VECTOR_HEADERS.items() if k != "X-Language"}
                | {"Authorization": VECTOR_AUTHORIZATION}
            },
            "signed header x-language missing",
        ),
        ({"headers": VECTOR_HEADERS}, "Authorization missing"),
    ],
    ids=["body", "path", "method", "query", "header", "ak", "scheme", "missing-header", "none"],
)
def test_tampered_vector_is_rejected(overrides: dict[str, object], reason: str) -> None:
    """Any change to a signed part, or a wrong access key, fails with a precise reason."""
    assert check(at(SIGNED_AT), **overrides) == reason


def test_wrong_secret_key_is_rejected() -> None:
    """A request signed with another SK does not verify."""
    authenticator = Authenticator(SimulatorConfig(ak=AK, sk=SK + "x"), clock=lambda: SIGNED_AT)
    assert check(authenticator) == "signature mismatch"


def test_host_must_be_signed() -> None:
    """A signature that leaves Host out of SignedHeaders is refused even if it is correct."""
    headers = {k: v for k, v in VECTOR_HEADERS.items() if k != "Host"}
    lower = {k.lower(): v for k, v in headers.items()}
    canonical = canonical_request(
        method="POST", path=PATH, query=[], headers=lower, signed_headers=sorted(lower), body=BODY
    )
    value = (
        f"SDK-HMAC-SHA256 Access={AK}, SignedHeaders={';'.join(sorted(lower))}, "
        f"Signature={signature(SK, string_to_sign(canonical, SDK_DATE))}"
    )
    reason = check(at(SIGNED_AT), headers={**VECTOR_HEADERS, "Authorization": value})
    assert reason == "host must be signed"


def test_unsorted_signed_headers_are_rejected() -> None:
    """SignedHeaders out of order is a client bug the simulator reports."""
    value = VECTOR_AUTHORIZATION.replace("content-type;host", "host;content-type")
    reason = check(at(SIGNED_AT), headers={**VECTOR_HEADERS, "Authorization": value})
    assert reason == "SignedHeaders must be lower-case, sorted and unique"


@pytest.mark.parametrize("sdk_date", ["2025-01-01T00:00:00Z", "2025111T000000Z", "yesterday"])
def test_malformed_date_is_rejected(sdk_date: str) -> None:
    """An X-Sdk-Date not in %Y%m%dT%H%M%SZ form is refused before any signature check."""
    headers = {**VECTOR_HEADERS, "X-Sdk-Date": sdk_date, "Authorization": VECTOR_AUTHORIZATION}
    assert check(at(SIGNED_AT), headers=headers) == "X-Sdk-Date malformed"


def test_token_auth() -> None:
    """With a token configured, only an X-Auth-Token equal to it passes."""
    authenticator = Authenticator(SimulatorConfig(token="tok-123"))
    assert (
        authenticator.failure(
            method="GET", path="/", query_string=b"", headers={"X-Auth-Token": "tok-123"}, body=b""
        )
        is None
    )
    assert (
        authenticator.failure(
            method="GET", path="/", query_string=b"", headers={"X-Auth-Token": "tok-124"}, body=b""
        )
        == "X-Auth-Token invalid"
    )
    assert (
        authenticator.failure(method="GET", path="/", query_string=b"", headers={}, body=b"")
        == "X-Auth-Token missing"
    )


def test_token_or_signature_when_both_configured() -> None:
    """With token and AK/SK both configured, either credential alone is enough."""
    authenticator = Authenticator(
        SimulatorConfig(token="tok-123", ak=AK, sk=SK), clock=lambda: SIGNED_AT
    )
    assert check(authenticator) is None
    assert check(authenticator, headers={"X-Auth-Token": "tok-123"}) is None
    assert check(authenticator, headers={"X-Auth-Token": "nope"}) == (
        "X-Auth-Token invalid; Authorization missing"
    )


def test_no_credentials_configured_accepts_everything() -> None:
    """Without token or AK/SK the authenticator is disabled and lets anything through."""
    authenticator = Authenticator(SimulatorConfig())
    assert not authenticator.enabled
    assert (
        authenticator.failure(method="GET", path="/", query_string=b"", headers={}, body=b"")
        is None
    )
