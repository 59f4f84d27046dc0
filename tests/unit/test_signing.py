"""AK/SK signing reproduces the documented vector and Huawei's own signer, byte for byte."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer
from pydantic import SecretStr

from htap_sync.worker.api.signing import AkSkAuth, canonical_uri

AK = "QTWAOYTTINDUT2QVKYUC"
SK = "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc"
HOST = "gaussdb.cn-north-4.myhuaweicloud.com"
PROJECT = "0123456789abcdef0123456789abcdef"
PATH = (
    f"/v3/{PROJECT}/instances/0f1e2d3c4b5a69788796a5b4c3d2e1f0in17/starrocks/databases/replication"
)
WHEN = datetime(2025, 1, 1, tzinfo=UTC)
BODY = (
    b'{"source_instance_id":"1a2b3c4d5e6f708192a3b4c5d6e7f809in07","source_database":"src_db",'
    b'"target_database":"tgt_db","task_name":"task_orders_001"}'
)


def _signed(request: httpx.Request, when: datetime = WHEN) -> httpx.Request:
    flow = AkSkAuth(SecretStr(AK), SecretStr(SK), clock=lambda: when).sync_auth_flow(request)
    return next(flow)


def test_the_documented_vector() -> None:
    """The POST of taurus-api.md section 3 signs to exactly the documented Authorization."""
    request = httpx.Request(
        "POST",
        f"https://{HOST}{PATH}",
        content=BODY,
        headers={
            "Content-Type": "application/json;charset=utf-8",
            "X-Language": "en-us",
            "X-Project-Id": PROJECT,
        },
    )
    signed = _signed(request)
    assert signed.headers["X-Sdk-Date"] == "20250101T000000Z"
    assert signed.headers["Authorization"] == (
        "SDK-HMAC-SHA256 Access=QTWAOYTTINDUT2QVKYUC, "
        "SignedHeaders=content-type;host;x-language;x-project-id;x-sdk-date, "
        "Signature=fc2db5562ea9403900a87f80fa38e6a355c9f7746832c7f787af15a49760c88c"
    )


def _sdk_authorization(
    method: str, path: str, query: list[tuple[str, str]], headers: dict[str, str], body: bytes
) -> str:
    request = SdkRequest(
        method=method,
        schema="https",
        host=HOST,
        resource_path=path,
        query_params=list(query),
        header_params=dict(headers),
        body=body,
    )
    signed = Signer(BasicCredentials(AK, SK, PROJECT)).sign(request)
    return str(signed.header_params["Authorization"])


CASES = [
    pytest.param(
        "POST",
        PATH,
        [],
        {"Content-Type": "application/json;charset=utf-8"},
        BODY,
        id="post-with-body",
    ),
    pytest.param(
        "GET",
        PATH,
        [("limit", "10"), ("offset", "0")],
        {"Content-Type": "application/json", "User-Agent": "huaweicloud-usdk-python/3.0"},
        b"",
        id="get-with-query",
    ),
    pytest.param(
        "GET",
        PATH + "/configuration",
        [("task_name", "a b~c/d&e")],
        {"Content-Type": "application/json"},
        b"",
        id="query-needing-encoding",
    ),
    pytest.param(
        "DELETE",
        f"/v3/{PROJECT}/odd path/ä~x/seg%2Fment",
        [("z", "1"), ("a", "2")],
        {"Content-Type": "application/json", "X-Language": "zh-cn"},
        b'{"task_name":"t"}',
        id="path-segments-needing-encoding",
    ),
]


@pytest.mark.parametrize(("method", "path", "query", "headers", "body"), CASES)
def test_matches_the_sdk_signer(
    method: str, path: str, query: list[tuple[str, str]], headers: dict[str, str], body: bytes
) -> None:
    """Our signature equals the one huaweicloudsdkcore's Signer makes for the same request."""
    url = httpx.URL(f"https://{HOST}", path=path)
    request = httpx.Request(method, url.copy_with(params=query), content=body, headers=headers)
    signed = _signed(request)
    sdk_headers = {
        k: v
        for k, v in signed.headers.items()
        if k.lower() in {h.lower() for h in headers} | {"x-sdk-date", "x-project-id"}
    }
    expected = _sdk_authorization(method, path, query, sdk_headers, body)
    assert signed.headers["Authorization"] == expected


def test_x_project_id_comes_from_the_path() -> None:
    """The project of a /v3/{project_id}/... path is sent as X-Project-Id, as the SDK does."""
    signed = _signed(httpx.Request("GET", f"https://{HOST}{PATH}"))
    assert signed.headers["X-Project-Id"] == PROJECT


def test_transport_headers_are_not_signed() -> None:
    """Headers a proxy may rewrite are left out of SignedHeaders."""
    request = httpx.Request(
        "POST",
        f"https://{HOST}{PATH}",
        content=BODY,
        headers={"Accept-Encoding": "gzip", "Connection": "keep-alive"},
    )
    auth = _signed(request).headers["Authorization"]
    assert (
        "accept-encoding" not in auth and "connection" not in auth and "content-length" not in auth
    )


def test_canonical_uri_keeps_tilde_and_adds_a_slash() -> None:
    """Segments are percent-encoded except ~, and the canonical path ends with /."""
    assert canonical_uri("/v3/a b/~x") == "/v3/a%20b/~x/"
    assert canonical_uri("/v3/p/") == "/v3/p/"


def test_secrets_never_show_in_repr() -> None:
    """Neither key appears when the auth object is printed or logged."""
    text = repr(AkSkAuth(SecretStr(AK), SecretStr(SK)))
    assert AK not in text and SK not in text
