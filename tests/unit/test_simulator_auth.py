"""Tests of the simulator's authentication: the signing vector, and the SDK's signer
against the simulator's verifier (no network)."""

from __future__ import annotations

import hashlib
from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st

from htap_sync.simulator.auth import (
    canonical_request,
    sign,
    string_to_sign,
)
from tests.unit.sim_signing import (
    AK,
    BODY,
    PATH,
    PROJECT,
    SDK_DATE,
    SIGNED_AT,
    SK,
    VECTOR_AUTHORIZATION,
    VECTOR_HEADERS,
    at,
    check,
    sdk_sign,
)


def test_vector_body_hash() -> None:
    """The vector's body hashes to the documented sha256."""
    assert (
        hashlib.sha256(BODY).hexdigest()
        == "a547c16917675970f50835ee0be0fc1a153e9cb6af8f46405a30abd9e9673201"
    )


def test_vector_string_to_sign_hash() -> None:
    """The canonical request of the vector hashes to the documented string-to-sign hash."""
    lower = {k.lower(): v for k, v in VECTOR_HEADERS.items()}
    canonical = canonical_request(
        method="POST",
        path=PATH,
        query=[],
        headers=lower,
        signed_headers=sorted(lower),
        body=BODY,
    )
    assert string_to_sign(canonical, SDK_DATE) == (
        "SDK-HMAC-SHA256\n20250101T000000Z\n"
        "f121b7f8f6df28b2975dc4661f35a22a9d2646cf736e308e465531545bd0d75b"
    )


def test_vector_authorization_byte_for_byte() -> None:
    """sign() reproduces the documented Authorization header exactly."""
    authorization = sign(
        ak=AK, sk=SK, method="POST", path=PATH, query=[], headers=VECTOR_HEADERS, body=BODY
    )
    assert authorization == VECTOR_AUTHORIZATION


def test_sdk_signer_reproduces_vector() -> None:
    """The SDK's own signer gives the documented header too (the vector is the SDK's)."""
    headers = {k: v for k, v in VECTOR_HEADERS.items() if k != "Host"}
    assert sdk_sign("POST", PATH, [], headers, BODY)["Authorization"] == VECTOR_AUTHORIZATION


def test_sdk_signed_get_with_query_verifies() -> None:
    """A GET with a query and an empty body, signed by the SDK, verifies."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "huaweicloud-usdk-python/3.0",
        "X-Project-Id": PROJECT,
        "X-Sdk-Date": SDK_DATE,
    }
    sent = sdk_sign("GET", PATH, [("offset", "0"), ("limit", "10")], headers, b"")
    assert "x-sdk-date" in sent["Authorization"]
    assert (
        check(
            at(SIGNED_AT), method="GET", query_string=b"offset=0&limit=10", headers=sent, body=b""
        )
        is None
    )


def test_sdk_signed_get_with_tampered_query_fails() -> None:
    """Changing a query value after the SDK signed it breaks the signature."""
    headers = {"X-Project-Id": PROJECT, "X-Sdk-Date": SDK_DATE}
    sent = sdk_sign("GET", PATH, [("limit", "10")], headers, b"")
    reason = check(at(SIGNED_AT), method="GET", query_string=b"limit=11", headers=sent, body=b"")
    assert reason == "signature mismatch"


_segment = st.text(st.characters(codec="utf-8", exclude_characters="/"), min_size=1, max_size=8)
_query_text = st.text(st.characters(codec="utf-8"), max_size=8)
_header_name = st.from_regex(r"x-[a-z0-9-]{1,10}", fullmatch=True)
_header_value = st.from_regex(r"[ -~]{0,20}", fullmatch=True)


@given(
    segments=st.lists(_segment, min_size=1, max_size=4),
    query=st.lists(st.tuples(_query_text, _query_text), max_size=4),
    extra_headers=st.dictionaries(_header_name, _header_value, max_size=4),
    body=st.binary(max_size=64),
    method=st.sampled_from(["GET", "POST", "DELETE"]),
)
def test_sign_agrees_with_sdk_signer(
    segments: list[str],
    query: list[tuple[str, str]],
    extra_headers: dict[str, str],
    body: bytes,
    method: str,
) -> None:
    """For any path, query, headers and body, sign() equals the SDK signer's header."""
    path = "/" + "/".join(segments)
    headers = {**extra_headers, "X-Sdk-Date": SDK_DATE, "Content-Type": "application/json"}
    sent = sdk_sign(method, path, query, headers, body)
    ours = sign(
        ak=AK,
        sk=SK,
        method=method,
        path=path,
        query=query,
        headers={k: v for k, v in sent.items() if k != "Authorization"},
        body=body,
    )
    assert ours == sent["Authorization"]


@given(
    segments=st.lists(_segment, min_size=1, max_size=4),
    query=st.lists(st.tuples(_query_text, _query_text), max_size=4),
    body=st.binary(max_size=64),
)
def test_authenticator_accepts_what_sdk_signs(
    segments: list[str], query: list[tuple[str, str]], body: bytes
) -> None:
    """The verifier accepts any SDK-signed request as the wire carries it (encoded query)."""
    path = "/" + "/".join(segments)
    sent = sdk_sign("POST", path, query, {"X-Sdk-Date": SDK_DATE}, body)
    wire_query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query)
    reason = check(
        at(SIGNED_AT), path=path, query_string=wire_query.encode(), headers=sent, body=body
    )
    assert reason is None


def test_vector_verifies() -> None:
    """The vector request passes verification at its own date."""
    assert check(at(SIGNED_AT)) is None
