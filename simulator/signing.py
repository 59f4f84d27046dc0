"""SDK-HMAC-SHA256 request signing, as the official Huawei Cloud SDK does it.

``canonical_request`` .. ``sign`` follow taurus-api.md section 3 and the SDK's
``huaweicloudsdkcore.signer.Signer`` step by step; ``simulator.auth.Authenticator`` verifies a
request by recomputing the signature with the same functions, so one test vector proves both.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import quote

ALGORITHM = "SDK-HMAC-SHA256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()
# The SDK sends this header (e.g. "UNSIGNED-PAYLOAD") instead of hashing non-JSON bodies.
CONTENT_SHA256_HEADER = "x-sdk-content-sha256"
# The gateway cannot check a signature whose date or target host it does not know.
REQUIRED_SIGNED = ("host", "x-sdk-date")


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
    missing = [name for name in REQUIRED_SIGNED if name not in lower]
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
