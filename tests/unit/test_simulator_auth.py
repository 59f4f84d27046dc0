"""Tests of the simulator's authentication: the signing vector, the SDK's signer, the app's 401."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx
import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette

from htap_sync.simulator import SimulatorConfig, SimulatorState, make_app
from htap_sync.simulator.auth import (
    Authenticator,
    canonical_request,
    sign,
    signature,
    string_to_sign,
)

# The test vector of taurus-api.md section 3, verbatim.
AK = "QTWAOYTTINDUT2QVKYUC"
SK = "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc"
HOST = "gaussdb.cn-north-4.myhuaweicloud.com"
PROJECT = "0123456789abcdef0123456789abcdef"
INSTANCE = "0f1e2d3c4b5a69788796a5b4c3d2e1f0in17"
PATH = f"/v3/{PROJECT}/instances/{INSTANCE}/starrocks/databases/replication"
BODY = (
    b'{"source_instance_id":"1a2b3c4d5e6f708192a3b4c5d6e7f809in07","source_database":"src_db",'
    b'"target_database":"tgt_db","task_name":"task_orders_001"}'
)
SDK_DATE = "20250101T000000Z"
SIGNED_AT = datetime(2025, 1, 1, tzinfo=UTC)
VECTOR_HEADERS = {
    "Content-Type": "application/json;charset=utf-8",
    "X-Language": "en-us",
    "X-Project-Id": PROJECT,
    "X-Sdk-Date": SDK_DATE,
    "Host": HOST,
}
VECTOR_AUTHORIZATION = (
    "SDK-HMAC-SHA256 Access=QTWAOYTTINDUT2QVKYUC, "
    "SignedHeaders=content-type;host;x-language;x-project-id;x-sdk-date, "
    "Signature=fc2db5562ea9403900a87f80fa38e6a355c9f7746832c7f787af15a49760c88c"
)


def sdk_sign(
    method: str,
    path: str,
    query: list[tuple[str, str]],
    headers: dict[str, str],
    body: bytes,
    *,
    ak: str = AK,
    sk: str = SK,
) -> dict[str, str]:
    """Sign with the official SDK; return the headers it ends up sending."""
    # The SDK's resource_path is percent-encoded per segment, as its client builds it.
    resource_path = "/".join(quote(segment, safe="") for segment in path.split("/"))
    request = SdkRequest(
        method=method,
        schema="https",
        host=HOST,
        resource_path=resource_path,
        query_params=list(query),
        header_params=dict(headers),
        body=body,
    )
    Signer(BasicCredentials(ak, sk)).sign(request)
    return dict(request.header_params)


def at(moment: datetime) -> Authenticator:
    """An AK/SK authenticator whose clock is frozen at ``moment``."""
    return Authenticator(SimulatorConfig(ak=AK, sk=SK), clock=lambda: moment)


def check(authenticator: Authenticator, **overrides: object) -> str | None:
    """Verify the test-vector request, with some parts replaced."""
    request: dict[str, object] = {
        "method": "POST",
        "path": PATH,
        "query_string": b"",
        "headers": {**VECTOR_HEADERS, "Authorization": VECTOR_AUTHORIZATION},
        "body": BODY,
    }
    request.update(overrides)
    return authenticator.failure(**request)  # type: ignore[arg-type]


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


# --- through the app --------------------------------------------------------------------


class AppClient:
    """Synchronous calls into an ASGI app through httpx.ASGITransport (no network)."""

    def __init__(self, app: Starlette, base_url: str) -> None:
        self._app = app
        self._base_url = base_url

    def request(self, method: str, url: str, **kwargs: object) -> httpx.Response:
        """Send one request on a fresh event loop and return the read response."""

        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self._app)
            async with httpx.AsyncClient(transport=transport, base_url=self._base_url) as client:
                return await client.request(method, url, **kwargs)  # type: ignore[arg-type]

        return asyncio.run(send())

    def get(self, url: str, **kwargs: object) -> httpx.Response:
        """GET ``url``."""
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: object) -> httpx.Response:
        """POST ``url``."""
        return self.request("POST", url, **kwargs)


def vector_client(config: SimulatorConfig, state: SimulatorState) -> AppClient:
    """A client whose Host is the vector's, for an app whose clock is the vector's date."""
    return AppClient(make_app(config, state, clock=lambda: SIGNED_AT), f"https://{HOST}")


def test_app_accepts_vector_request() -> None:
    """The vector request, sent over HTTP to the app, creates the task."""
    state = SimulatorState()
    client = vector_client(SimulatorConfig(ak=AK, sk=SK), state)
    headers = {k: v for k, v in VECTOR_HEADERS.items() if k != "Host"}
    response = client.post(
        PATH, content=BODY, headers={**headers, "Authorization": VECTOR_AUTHORIZATION}
    )
    assert response.status_code == 200, response.text
    assert state.creates_for(PROJECT, INSTANCE, "task_orders_001") == 1


def test_app_accepts_sdk_signed_list_call() -> None:
    """A list call signed by the SDK signer passes the app's check."""
    client = vector_client(SimulatorConfig(ak=AK, sk=SK), SimulatorState())
    sent = sdk_sign("GET", PATH, [("limit", "10"), ("offset", "0")], {"X-Sdk-Date": SDK_DATE}, b"")
    sent.pop("Host")
    response = client.get(PATH, params={"limit": "10", "offset": "0"}, headers=sent)
    assert response.status_code == 200, response.text
    assert response.json() == {"total_count": "0", "replications": []}


def test_app_answers_401_without_leaking_secrets() -> None:
    """A bad signature gets 401 APIGW.0301, an X-Request-Id, and no secret in the body."""
    state = SimulatorState()
    config = SimulatorConfig(ak=AK, sk=SK, token="very-secret-token")
    client = vector_client(config, state)
    bad = VECTOR_AUTHORIZATION[:-1] + ("0" if VECTOR_AUTHORIZATION[-1] != "0" else "1")
    response = client.post(
        PATH, content=BODY, headers={"Authorization": bad, "X-Sdk-Date": SDK_DATE}
    )
    assert response.status_code == 401
    payload = response.json()
    assert payload["error_code"] == "APIGW.0301"
    assert payload["error_msg"].startswith("Incorrect IAM authentication information: ")
    assert SK not in response.text and "very-secret-token" not in response.text
    assert len(response.headers["X-Request-Id"]) == 32
    assert state.create_calls == 1 and state.created == 0


def test_app_401_on_list_call() -> None:
    """The list call is authenticated too."""
    client = vector_client(SimulatorConfig(token="tok"), SimulatorState())
    response = client.get(PATH, headers={"X-Auth-Token": "wrong"})
    assert response.status_code == 401
    assert json.loads(response.text)["error_code"] == "APIGW.0301"


def test_admin_routes_need_no_auth() -> None:
    """/_sim/stats and /_sim/healthz answer without credentials even when auth is on."""
    client = vector_client(SimulatorConfig(token="tok", ak=AK, sk=SK), SimulatorState())
    assert client.get("/_sim/healthz").json() == {"ok": True}
    assert client.get("/_sim/stats").status_code == 200
