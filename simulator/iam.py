"""IAM's password login, ``POST /v3/auth/tokens``, served on the simulator's own host and port.

The request is the one of taurus-api.md section 3::

    {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "domain": {"name": ACCOUNT}, "name": USER, "password": PWD}}},
     "scope": {"project": {"id": PROJECT_ID}}}}

=====================================  ======  ==============================================
situation                              status  answer
=====================================  ======  ==============================================
the configured account, user and       201     header ``X-Subject-Token: <new opaque token>``;
password                                       body ``{"token": {"expires_at", "issued_at",
                                               "methods", "project", "user"}}``
wrong account, user or password        401     ``{"error": {"code": 401, "message": "The
(the answer does not say which)                username or password is wrong.", "title":
                                               "Unauthorized"}}``
body not JSON, a field missing or of   400     ``{"error": {"code": 400, "message": "Invalid
the wrong type, ``methods`` other              parameter: <dotted field>: <rule>", "title":
than ``["password"]``, a project id            "Bad Request"}}``
not 32 letters or digits
=====================================  ======  ==============================================

The error body is Keystone's shape, which IAM keeps for its ``/v3`` API (the gateway's
``{error_code, error_msg}`` is for the services behind it); the 401 message is IAM's, the 400
message is the simulator's wording. Times are ISO 8601 UTC with microseconds
(``2026-11-29T14:00:00.000000Z``); ``expires_at`` is ``issued_at`` + ``token_lifetime_s``.
Without an IAM account in the config the route is not served (404 ``APIGW.0101``).

Simplified on purpose: no latency, fault or rate limit applies (IAM is another service than
the one simulated); the token is accepted on any project's path, not just the one it is scoped
to; the body has no ``catalog`` or ``roles``, and the project's ``name`` is fixed
(``PROJECT_NAME``: Huawei Cloud names a region's project after the region); no MFA
(``totp``) and no scope by project name or by domain.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from htap_sync.simulator.auth import Clock
from htap_sync.simulator.config import SimulatorConfig
from htap_sync.simulator.errors import iam_error
from htap_sync.simulator.tokens import IssuedToken, TokenStore, iso_utc
from htap_sync.simulator.validation import PROJECT_ID_RE, InvalidParameter

IAM_TOKENS_PATH = "/v3/auth/tokens"
PROJECT_NAME = "cn-north-4"
WRONG_CREDENTIALS = "The username or password is wrong."


@dataclass(frozen=True)
class Login:
    """The fields of a valid password login body."""

    domain: str
    user: str
    password: str = field(repr=False)
    project_id: str


def _member(parent: dict[str, Any], name: str, path: str) -> tuple[Any, str]:
    where = f"{path}.{name}" if path else name
    if parent.get(name) is None:
        raise InvalidParameter(where, "required")
    return parent[name], where


def _object(parent: dict[str, Any], name: str, path: str) -> tuple[dict[str, Any], str]:
    value, where = _member(parent, name, path)
    if not isinstance(value, dict):
        raise InvalidParameter(where, "must be an object")
    return value, where


def _text(parent: dict[str, Any], name: str, path: str) -> str:
    value, where = _member(parent, name, path)
    if not isinstance(value, str) or not value:
        raise InvalidParameter(where, "must be a non-empty string")
    return value


def parse_login_body(raw: bytes) -> Login:
    """Parse and check a password login body; the error names the field by its dotted path.

    Raises:
        InvalidParameter: The body breaks a rule (becomes 400).
    """
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidParameter("body", "must be a JSON object") from None
    if not isinstance(body, dict):
        raise InvalidParameter("body", "must be a JSON object")
    auth, at = _object(body, "auth", "")
    identity, at_identity = _object(auth, "identity", at)
    methods, where = _member(identity, "methods", at_identity)
    if methods != ["password"]:
        raise InvalidParameter(where, 'must be ["password"]')
    password, at_password = _object(identity, "password", at_identity)
    user, at_user = _object(password, "user", at_password)
    domain, at_domain = _object(user, "domain", at_user)
    scope, at_scope = _object(auth, "scope", at)
    project, at_project = _object(scope, "project", at_scope)
    project_id = _text(project, "id", at_project)
    if not PROJECT_ID_RE.fullmatch(project_id):
        raise InvalidParameter(f"{at_project}.id", "must be 32 letters or digits")
    return Login(
        domain=_text(domain, "name", at_domain),
        user=_text(user, "name", at_user),
        password=_text(user, "password", at_user),
        project_id=project_id,
    )


def _matches(given: str, expected: str | None) -> bool:
    return expected is not None and hmac.compare_digest(given.encode(), expected.encode())


def token_body(issued: IssuedToken) -> dict[str, Any]:
    """The 201 answer's body for one issued token."""
    return {
        "token": {
            "expires_at": iso_utc(issued.expires_at),
            "issued_at": iso_utc(issued.issued_at),
            "methods": ["password"],
            "project": {"id": issued.project_id, "name": PROJECT_NAME},
            "user": {"name": issued.user, "domain": {"name": issued.domain}},
        }
    }


def iam_routes(config: SimulatorConfig, tokens: TokenStore, clock: Clock) -> list[Route]:
    """Return the login route, or no route when ``config`` has no IAM account.

    Args:
        config: The account that may log in, and ``token_lifetime_s``.
        tokens: Where issued tokens and the login counters go.
        clock: The current time (aware datetime): issue times and expiry.
    """
    if not config.iam_enabled:
        return []
    lifetime = timedelta(seconds=config.token_lifetime_s)

    async def login_route(request: Request) -> Response:
        try:
            login = parse_login_body(await request.body())
        except InvalidParameter as exc:
            tokens.record_login_failure()
            return iam_error(400, str(exc))
        # All three compared every time: the answer's timing does not tell which was wrong.
        checks = [
            _matches(login.domain, config.iam_domain),
            _matches(login.user, config.iam_user),
            _matches(login.password, config.iam_password),
        ]
        if not all(checks):
            tokens.record_login_failure()
            return iam_error(401, WRONG_CREDENTIALS)
        token, issued = tokens.issue(
            domain=login.domain,
            user=login.user,
            project_id=login.project_id,
            now=clock(),
            lifetime=lifetime,
        )
        response = JSONResponse(token_body(issued), status_code=201)
        response.headers["X-Subject-Token"] = token
        return response

    return [Route(IAM_TOKENS_PATH, login_route, methods=["POST"])]
