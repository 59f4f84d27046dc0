"""Request authentication as the API gateway does it: a static token or SDK-HMAC-SHA256 signing.

The signing half (``canonical_request`` .. ``sign``) follows taurus-api.md section 3 and the
official SDK's ``huaweicloudsdkcore.signer.Signer`` step by step; ``Authenticator`` verifies a
request by recomputing the signature with the same functions, so one test vector proves both.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, quote

from simulator.config import SimulatorConfig

ALGORITHM = "SDK-HMAC-SHA256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_CLOCK_SKEW = timedelta(minutes=15)
EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()
# The SDK sends this header (e.g. "UNSIGNED-PAYLOAD") instead of hashing non-JSON bodies.
CONTENT_SHA256_HEADER = "x-sdk-content-sha256"

_AUTHORIZATION_RE = re.compile(
    r"SDK-HMAC-SHA256\s+Access=(?P<access>[^,\s]+),\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<signature>[0-9a-fA-F]+)"
)
# The gateway cannot check a signature whose date or target host it does not know.
_REQUIRED_SIGNED = ("host", "x-sdk-date")

Clock = Callable[[], datetime]


def _encode(text: str) -> str:
    # quote() keeps "-_." and letters/digits; "~" is kept too, as the SDK does.
    return quote(text, safe="~")


def canonical_uri(path: str) -> str:
    """Percent-encode each segment of a decoded path and add the trailing "/" used for signing.

    Args:
        path: The request path, already percent-decoded (as ASGI's ``scope["path"]``).
    """
    uri = "/".join(_encode(segment) for segment in path.split("/"))
    return uri if uri.endswith("/") else uri + "/"


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """Sort decoded ``(name, value)`` pairs, then percent-encode and join them with "&"."""
    return "&".join(f"{_encode(name)}={_encode(value)}" for name, value in sorted(pairs))


def payload_sha256(body: bytes, headers: Mapping[str, str]) -> str:
    """Return the body hash line of the canonical request.

    Args:
        body: The raw request body.
        headers: The signed headers, names lower-cased.
    """
    if not body:
        return EMPTY_BODY_SHA256
    declared = headers.get(CONTENT_SHA256_HEADER)
    if declared:
        return declared
    return hashlib.sha256(body).hexdigest()


def canonical_request(
    *,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    signed_headers: Sequence[str],
    body: bytes,
) -> str:
    """Build the canonical request of taurus-api.md section 3, step 3.

    Args:
        method: HTTP method, any case.
        path: Decoded request path.
        query: Decoded query pairs, any order.
        headers: Request headers, names lower-cased; must hold every name in ``signed_headers``.
        signed_headers: Lower-case header names to sign, in the order they are listed.
        body: Raw body bytes.

    Raises:
        KeyError: A signed header is missing from ``headers``.
    """
    signed = {name: headers[name] for name in signed_headers}
    header_block = "".join(f"{name}:{value.strip()}\n" for name, value in signed.items())
    return "\n".join(
        [
            method.upper(),
            canonical_uri(path),
            canonical_query(query),
            header_block,
            ";".join(signed_headers),
            payload_sha256(body, signed),
        ]
    )


def string_to_sign(canonical: str, sdk_date: str) -> str:
    """Build ``SDK-HMAC-SHA256\\n<X-Sdk-Date>\\n<sha256 hex of the canonical request>``."""
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{sdk_date}\n{digest}"


def signature(sk: str, to_sign: str) -> str:
    """Return the lower-hex HMAC-SHA256 of ``to_sign`` keyed with the secret key."""
    return hmac.new(sk.encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def sign(
    *,
    ak: str,
    sk: str,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
) -> str:
    """Sign a request the way the SDK does and return its ``Authorization`` value.

    Every header is signed except names containing "_" (the SDK skips those too).

    Args:
        ak: Access key, written into the header.
        sk: Secret key, used only as the HMAC key.
        method: HTTP method.
        path: Decoded request path.
        query: Decoded query pairs.
        headers: Headers to sign, any case; must include ``Host`` and ``X-Sdk-Date``.
        body: Raw body bytes.

    Raises:
        ValueError: ``Host`` or ``X-Sdk-Date`` is missing.
    """
    lower = {name.lower(): value for name, value in headers.items()}
    missing = [name for name in _REQUIRED_SIGNED if name not in lower]
    if missing:
        raise ValueError(f"headers must include {', '.join(missing)}")
    signed_headers = sorted(name for name in lower if "_" not in name)
    canonical = canonical_request(
        method=method,
        path=path,
        query=query,
        headers=lower,
        signed_headers=signed_headers,
        body=body,
    )
    hex_signature = signature(sk, string_to_sign(canonical, lower["x-sdk-date"]))
    return (
        f"{ALGORITHM} Access={ak}, SignedHeaders={';'.join(signed_headers)}, "
        f"Signature={hex_signature}"
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Authenticator:
    """Decides whether a request carries valid credentials for one ``SimulatorConfig``.

    With a token configured, ``X-Auth-Token`` must match it; with AK/SK configured, the
    ``Authorization`` signature must verify; with both, either is enough; with neither,
    everything passes.
    """

    def __init__(self, config: SimulatorConfig, *, clock: Clock | None = None) -> None:
        """Bind the credentials to accept.

        Args:
            config: Supplies ``token``, ``ak`` and ``sk``.
            clock: Returns the current time as an aware datetime; injectable for tests.
        """
        self._token = config.token
        self._ak = config.ak
        self._sk = config.sk
        self._clock = clock or _utc_now

    @property
    def enabled(self) -> bool:
        """True if any credential is configured."""
        return self._token is not None or self._ak is not None

    def failure(
        self,
        *,
        method: str,
        path: str,
        query_string: bytes,
        headers: Mapping[str, str],
        body: bytes,
    ) -> str | None:
        """Check one request.

        Args:
            method: HTTP method.
            path: Decoded request path.
            query_string: Raw (still encoded) query string, without "?".
            headers: Request headers (names in any case, values as text).
            body: Raw body bytes.

        Returns:
            None if the request is authenticated, else a short reason that never contains a
            secret (for the 401 message).
        """
        lower = {name.lower(): value for name, value in headers.items()}
        reasons: list[str] = []
        if self._token is not None:
            given = lower.get("x-auth-token")
            if given is None:
                reasons.append("X-Auth-Token missing")
            elif hmac.compare_digest(given.encode("utf-8"), self._token.encode("utf-8")):
                return None
            else:
                reasons.append("X-Auth-Token invalid")
        if self._ak is not None and self._sk is not None:
            authorization = lower.get("authorization")
            if authorization is None:
                reasons.append("Authorization missing")
            else:
                reason = self._signature_failure(
                    authorization, method, path, query_string, lower, body, self._ak, self._sk
                )
                if reason is None:
                    return None
                reasons.append(reason)
        return "; ".join(reasons) if reasons else None

    def _signature_failure(
        self,
        authorization: str,
        method: str,
        path: str,
        query_string: bytes,
        headers: Mapping[str, str],
        body: bytes,
        ak: str,
        sk: str,
    ) -> str | None:
        match = _AUTHORIZATION_RE.fullmatch(authorization.strip())
        if match is None:
            return "Authorization is not SDK-HMAC-SHA256"
        if not hmac.compare_digest(match["access"].encode("utf-8"), ak.encode("utf-8")):
            return "unknown access key"
        signed_headers = match["signed"].split(";")
        # The SDK lists them lower-case, sorted and unique; anything else is a client bug.
        if signed_headers != sorted({name.lower() for name in signed_headers}):
            return "SignedHeaders must be lower-case, sorted and unique"
        for name in _REQUIRED_SIGNED:
            if name not in signed_headers:
                return f"{name} must be signed"
        for name in signed_headers:
            if name not in headers:
                return f"signed header {name} missing"
        reason = self._date_failure(headers["x-sdk-date"])
        if reason is not None:
            return reason
        query = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
        canonical = canonical_request(
            method=method,
            path=path,
            query=query,
            headers=headers,
            signed_headers=signed_headers,
            body=body,
        )
        expected = signature(sk, string_to_sign(canonical, headers["x-sdk-date"]))
        if not hmac.compare_digest(expected, match["signature"].lower()):
            return "signature mismatch"
        return None

    def _date_failure(self, sdk_date: str) -> str | None:
        try:
            signed_at = datetime.strptime(sdk_date, DATE_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            return "X-Sdk-Date malformed"
        # strptime accepts "2025111T..."; only the canonical form is what got signed.
        if signed_at.strftime(DATE_FORMAT) != sdk_date:
            return "X-Sdk-Date malformed"
        if abs(self._clock() - signed_at) > MAX_CLOCK_SKEW:
            return "X-Sdk-Date more than 15 minutes off"
        return None
