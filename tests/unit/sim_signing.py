"""The signing vector the simulator's authentication tests share, and helpers to sign
and check requests as the SDK does."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer

from htap_sync.simulator import SimulatorConfig
from htap_sync.simulator.auth import (
    Authenticator,
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
