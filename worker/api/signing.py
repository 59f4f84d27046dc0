"""AK/SK request signing, ``SDK-HMAC-SHA256``, byte for byte as Huawei Cloud's SDKs sign.

1. ``X-Sdk-Date`` (UTC, ``%Y%m%dT%H%M%SZ``), ``Host`` and ``X-Project-Id`` are set.
2. The canonical request: method, the path with each segment percent-encoded (``~`` kept) and
   a trailing ``/``, the sorted and encoded query, ``name:value`` of each signed header, the
   signed header names, and the hex SHA-256 of the body.
3. The string to sign: ``SDK-HMAC-SHA256``, the date, the hex SHA-256 of the canonical request.
4. ``Authorization: SDK-HMAC-SHA256 Access=AK, SignedHeaders=..., Signature=hex(HMAC(SK))``.

Headers a transport or proxy may rewrite on the way (``Accept-Encoding``, ``Connection``,
``Content-Length``...) are not signed; every other header is, as the SDK signs all it sets.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Generator, Iterable, Mapping
from datetime import UTC, datetime
from urllib.parse import quote, unquote

import httpx
from pydantic import SecretStr

ALGORITHM = "SDK-HMAC-SHA256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED = frozenset(
    {
        "accept",
        "accept-encoding",
        "authorization",
        "connection",
        "content-length",
        "transfer-encoding",
        "te",
        "upgrade",
        "proxy-authorization",
    }
)
_PROJECT_IN_PATH = re.compile(r"^/v\d+/([A-Za-z0-9]{32})(/|$)")


def _encode(text: str) -> str:
    return quote(text, safe="~")


def canonical_uri(path: str) -> str:
    """Each segment of the (decoded) path percent-encoded, with a trailing slash."""
    uri = "/".join(_encode(segment) for segment in unquote(path).split("/"))
    return uri if uri.endswith("/") else uri + "/"


def canonical_query(params: Iterable[tuple[str, str]]) -> str:
    """``k=v`` pairs, sorted before encoding (as the SDK sorts), joined with ``&``."""
    return "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(params))


def canonical_request(
    method: str,
    path: str,
    params: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    signed: list[str],
    body: bytes,
) -> str:
    """The canonical request text; ``headers`` keyed in lower case."""
    lines = "".join(f"{name}:{headers[name].strip()}\n" for name in signed)
    payload = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
    return "\n".join(
        [
            method.upper(),
            canonical_uri(path),
            canonical_query(params),
            lines,
            ";".join(signed),
            payload,
        ]
    )


def authorization(
    *,
    ak: str,
    sk: str,
    method: str,
    path: str,
    params: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
) -> str:
    """The ``Authorization`` value for a request whose headers already carry ``X-Sdk-Date``.

    Every header given is signed except those in :data:`UNSIGNED` and names with ``_`` (the
    SDK skips those too).
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    signed = sorted(k for k in lowered if k not in UNSIGNED and "_" not in k)
    canonical = canonical_request(method, path, params, lowered, signed, body)
    to_sign = "\n".join(
        [ALGORITHM, lowered["x-sdk-date"], hashlib.sha256(canonical.encode()).hexdigest()]
    )
    signature = hmac.new(sk.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{ALGORITHM} Access={ak}, SignedHeaders={';'.join(signed)}, Signature={signature}"


class AkSkAuth(httpx.Auth):
    """Signs every request with an access key and secret key; neither shows in ``repr``.

    Args:
        ak: the access key.
        sk: the secret key.
        clock: the time of ``X-Sdk-Date`` (the gateway refuses dates 15 minutes off).
    """

    requires_request_body = True

    def __init__(
        self,
        ak: SecretStr,
        sk: SecretStr,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._ak = ak
        self._sk = sk
        self._clock = clock

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add X-Sdk-Date, X-Project-Id (from the path) and Authorization, then send."""
        request.headers["X-Sdk-Date"] = self._clock().strftime(DATE_FORMAT)
        project = _PROJECT_IN_PATH.match(request.url.path)
        if project and "X-Project-Id" not in request.headers:
            request.headers["X-Project-Id"] = project.group(1)
        request.headers["Authorization"] = authorization(
            ak=self._ak.get_secret_value(),
            sk=self._sk.get_secret_value(),
            method=request.method,
            path=request.url.path,
            params=list(request.url.params.multi_items()),
            headers=dict(request.headers),
            body=request.content,
        )
        yield request

    def __repr__(self) -> str:
        return "AkSkAuth(ak=SecretStr('**********'), sk=SecretStr('**********'))"
