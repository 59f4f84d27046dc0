"""Turns API answers and transport failures into the error tree, in exactly one place each."""

from __future__ import annotations

import contextlib
import email.utils
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx

from htap_sync.common.errors import (
    Ambiguous,
    ApiError,
    AuthFailed,
    InProgress,
    NotFound,
    Rejected,
    ServerError,
    Throttled,
    TransportError,
)

THROTTLE_CODES = frozenset({"APIGW.0308", "APIG.0308"})
# "Another operation is in progress" (retry later): taurus-api.md section 7, from the provider.
IN_PROGRESS_CODES = frozenset(
    {
        "DBS.200011",
        "DBS.200019",
        "DBS.201014",
        "DBS.201015",
        "DBS.200047",
        "DBS.05000084",
        "DBS.201202",
        "DBS.216011",
    }
)
AUTH_CODES = frozenset({"APIGW.0301", "APIG.0301"})
_MAX_MSG = 500


def _retry_after_s(value: str | None, now: float) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        data = json.loads(response.content or b"null")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def error_for(response: httpx.Response, *, now: float | None = None) -> ApiError | None:
    """The error an answer stands for, or None for a 2xx.

    Classification goes by HTTP status first: the API's error codes are not reliable on their
    own (``DBS.200022`` means "Instance not found" with 400 and "name exists" with 409).
    """
    status = response.status_code
    if 200 <= status < 300:
        return None
    body = _body(response)
    code = body.get("error_code")
    code = str(code) if code is not None else None
    msg = str(body.get("error_msg") or response.reason_phrase or "no message")[:_MAX_MSG]
    request_id = response.headers.get("X-Request-Id") or body.get("request_id")
    details: dict[str, Any] = {
        "http_status": status,
        "error_code": code,
        "request_id": str(request_id) if request_id else None,
    }
    if status == 429 or code in THROTTLE_CODES:
        retry_after = _retry_after_s(
            response.headers.get("Retry-After"), time.time() if now is None else now
        )
        return Throttled(msg, retry_after_s=retry_after, **details)
    if status == 401 or code in AUTH_CODES:
        return AuthFailed(msg, **details)
    if status == 409 and code in IN_PROGRESS_CODES:
        return InProgress(msg, **details)
    if status == 404:
        return NotFound(msg, **details)
    if 400 <= status < 500:
        return Rejected(msg, **details)
    # 5xx, and anything else unexpected (a redirect on a POST): the task may exist.
    return ServerError(msg, **details)


@contextlib.contextmanager
def transport_errors() -> Iterator[None]:
    """Re-raise httpx's exceptions as ours: not sent (retry) or sent (ambiguous).

    No raw httpx exception leaves this block.
    """
    try:
        yield
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise TransportError(f"not sent: {type(exc).__name__}: {exc}") from exc
    except httpx.HTTPError as exc:
        # ReadTimeout, WriteError, RemoteProtocolError...: the request may have been processed.
        raise Ambiguous(f"no answer after sending: {type(exc).__name__}: {exc}") from exc


_NAME_EXISTS = re.compile(r"(already exist|name exist|duplicate|has been used|in use)", re.I)


def says_name_exists(exc: ApiError) -> bool:
    """Whether a refusal of a create call says a task of that name exists.

    What the service answers to a second create with an existing name is undocumented
    (taurus-api.md section 7), so this reads the answer by its meaning: a 409 that is not
    "in progress", or any 4xx whose message says the name exists or is taken.
    """
    if not isinstance(exc, Rejected):
        return False
    return exc.http_status == 409 or bool(_NAME_EXISTS.search(exc.error_msg))
