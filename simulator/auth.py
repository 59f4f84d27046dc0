"""Request authentication as the API gateway does it: a token, or an SDK-HMAC-SHA256 signature.

A token is the static one of the config or one the IAM login issued (``simulator.tokens``); a
signature is verified by recomputing it with ``simulator.signing``, the SDK's own steps.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

from htap_sync.simulator.config import SimulatorConfig
from htap_sync.simulator.signing import (
    ALGORITHM,
    CONTENT_SHA256_HEADER,
    DATE_FORMAT,
    EMPTY_BODY_SHA256,
    REQUIRED_SIGNED,
    canonical_query,
    canonical_request,
    canonical_uri,
    payload_sha256,
    sign,
    signature,
    string_to_sign,
)
from htap_sync.simulator.tokens import TokenCheck, TokenStore

# The signing names are re-exported: they lived here before ``simulator.signing`` existed.
__all__ = [
    "ALGORITHM",
    "CONTENT_SHA256_HEADER",
    "DATE_FORMAT",
    "EMPTY_BODY_SHA256",
    "EXPIRED_REASON",
    "MAX_CLOCK_SKEW",
    "Authenticator",
    "Clock",
    "canonical_query",
    "canonical_request",
    "canonical_uri",
    "payload_sha256",
    "sign",
    "signature",
    "string_to_sign",
    "utc_now",
]

MAX_CLOCK_SKEW = timedelta(minutes=15)

_AUTHORIZATION_RE = re.compile(
    r"SDK-HMAC-SHA256\s+Access=(?P<access>[^,\s]+),\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<signature>[0-9a-fA-F]+)"
)

Clock = Callable[[], datetime]

# The reason given for a token the IAM login issued whose lifetime is over.
EXPIRED_REASON = "token expired"


def utc_now() -> datetime:
    """The default clock: the current time, aware, in UTC."""
    return datetime.now(UTC)


class Authenticator:
    """Decides whether a request carries valid credentials for one ``SimulatorConfig``.

    With a token or an IAM account configured, ``X-Auth-Token`` must be the static token or
    one the IAM login issued that has not expired yet; with AK/SK configured, the
    ``Authorization`` signature must verify; with both, either is enough; with neither,
    everything passes. A refusal of an expired token is counted in the ``TokenStore``.
    """

    def __init__(
        self,
        config: SimulatorConfig,
        *,
        clock: Clock | None = None,
        tokens: TokenStore | None = None,
    ) -> None:
        """Bind the credentials to accept.

        Args:
            config: Supplies ``token``, ``ak``, ``sk`` and whether an IAM account is set.
            clock: Returns the current time as an aware datetime; injectable for tests.
            tokens: The tokens the IAM login issued; only consulted when ``config`` has an
                IAM account.
        """
        self._token = config.token
        self._ak = config.ak
        self._sk = config.sk
        self._clock = clock or utc_now
        self._tokens = tokens if config.iam_enabled else None

    @property
    def enabled(self) -> bool:
        """True if any credential is configured."""
        return self._token is not None or self._ak is not None or self._tokens is not None

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
        if self._token is not None or self._tokens is not None:
            given = lower.get("x-auth-token")
            reason = "X-Auth-Token missing" if given is None else self._token_failure(given)
            if reason is None:
                return None
            reasons.append(reason)
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
        if EXPIRED_REASON in reasons and self._tokens is not None:
            self._tokens.record_expired_rejection()
        return "; ".join(reasons) if reasons else None

    def _token_failure(self, given: str) -> str | None:
        static = self._token
        if static is not None and hmac.compare_digest(given.encode(), static.encode()):
            return None
        if self._tokens is not None:
            check = self._tokens.check(given, self._clock())
            if check is TokenCheck.VALID:
                return None
            if check is TokenCheck.EXPIRED:
                return EXPIRED_REASON
        return "X-Auth-Token invalid"

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
        for name in REQUIRED_SIGNED:
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
