"""Tokens issued by the IAM login route, and the counters of logins and expired-token refusals.

A token is an opaque random string. The store keeps only its SHA-256 digest, never the token
itself, so nothing it holds or reports (``issued()``, ``summary()``) can leak one. A token is
valid from its issue until ``expires_at`` (excluded): at ``expires_at`` it is expired. Every
login issues a new token and leaves the earlier ones valid, as IAM does; expired tokens are
kept, so the gateway can tell "expired" from "never issued".
"""

from __future__ import annotations

import enum
import hashlib
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

# Random bytes per token; IAM's real tokens are several kilobytes of PKI text, but opaque
# either way: a client must not parse one.
_TOKEN_BYTES = 48


def iso_utc(moment: datetime) -> str:
    """Format an aware datetime as IAM does: ``2026-11-29T14:00:00.000000Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenCheck(enum.Enum):
    """What an ``X-Auth-Token`` value is to the store."""

    VALID = "valid"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class IssuedToken:
    """One issued token, without the token itself."""

    domain: str
    user: str
    project_id: str
    issued_at: datetime
    expires_at: datetime


class TokenStore:
    """Thread-safe record of issued tokens and of the IAM counters."""

    def __init__(self) -> None:
        """Start empty."""
        self._lock = threading.Lock()
        # digest -> token; dicts keep the issue order.
        self._tokens: dict[str, IssuedToken] = {}
        self._login_failures = 0
        self._expired_token_rejections = 0

    def issue(
        self, *, domain: str, user: str, project_id: str, now: datetime, lifetime: timedelta
    ) -> tuple[str, IssuedToken]:
        """Issue a new token valid from ``now`` for ``lifetime``; counts one login.

        Returns:
            The token (to send once, in ``X-Subject-Token``) and what the store keeps of it.
        """
        token = secrets.token_urlsafe(_TOKEN_BYTES)
        issued = IssuedToken(
            domain=domain,
            user=user,
            project_id=project_id,
            issued_at=now,
            expires_at=now + lifetime,
        )
        with self._lock:
            self._tokens[_digest(token)] = issued
        return token, issued

    def check(self, token: str, now: datetime) -> TokenCheck:
        """Tell whether ``token`` was issued here and, if so, whether it is valid at ``now``."""
        with self._lock:
            issued = self._tokens.get(_digest(token))
        if issued is None:
            return TokenCheck.UNKNOWN
        return TokenCheck.VALID if now < issued.expires_at else TokenCheck.EXPIRED

    def record_login_failure(self) -> None:
        """Count one login answered 400 or 401."""
        with self._lock:
            self._login_failures += 1

    def record_expired_rejection(self) -> None:
        """Count one data-sync call refused 401 because its token had expired."""
        with self._lock:
            self._expired_token_rejections += 1

    @property
    def logins(self) -> int:
        """Successful logins (201), which is also the number of tokens issued."""
        with self._lock:
            return len(self._tokens)

    @property
    def login_failures(self) -> int:
        """Logins answered 400 (malformed body) or 401 (wrong account, user or password)."""
        with self._lock:
            return self._login_failures

    @property
    def expired_token_rejections(self) -> int:
        """Data-sync calls refused 401 because their ``X-Auth-Token`` had expired."""
        with self._lock:
            return self._expired_token_rejections

    def issued(self) -> list[IssuedToken]:
        """Return every token issued, in issue order, without the tokens themselves."""
        with self._lock:
            return list(self._tokens.values())

    def summary(self) -> dict[str, Any]:
        """The snapshot's IAM part: the counters and each token's expiry time (ISO 8601 UTC)."""
        with self._lock:
            return {
                "logins": len(self._tokens),
                "login_failures": self._login_failures,
                "expired_token_rejections": self._expired_token_rejections,
                "token_expiries": [iso_utc(t.expires_at) for t in self._tokens.values()],
            }
