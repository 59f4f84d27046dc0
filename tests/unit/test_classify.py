"""Every answer of the status table becomes the right error, and no httpx exception escapes."""

from __future__ import annotations

import json

import httpx
import pytest

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
from htap_sync.worker.api.classify import error_for, transport_errors


def _answer(
    status: int, body: object = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    content = b"" if body is None else json.dumps(body).encode()
    return httpx.Response(status, content=content, headers=headers or {})


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (429, "APIGW.0308", Throttled),
        (429, None, Throttled),
        (403, "APIG.0308", Throttled),  # a throttling code wins over its status
        (401, "APIGW.0301", AuthFailed),
        (401, None, AuthFailed),
        (403, "APIGW.0301", AuthFailed),
        (409, "DBS.200011", InProgress),
        (409, "DBS.200019", InProgress),
        (409, "DBS.200047", InProgress),
        (409, "DBS.200022", Rejected),  # name exists: not in progress, not retried
        (400, "DBS.200022", Rejected),  # "Instance not found." with 400
        (400, "DBS.280001", Rejected),
        (403, "DBS.200001", Rejected),
        (404, "DBS.200022", NotFound),
        (422, None, Rejected),
        (500, "DBS.108000", ServerError),
        (502, None, ServerError),
        (503, "DBS.200005", ServerError),
        (504, None, ServerError),
        (302, None, ServerError),  # a redirect on a POST: we cannot know, so it is ambiguous
    ],
)
def test_status_table(status: int, code: str | None, expected: type[ApiError]) -> None:
    """Classification goes by status first, then by the documented codes."""
    body = {"error_code": code, "error_msg": "msg"} if code else None
    error = error_for(_answer(status, body, {"X-Request-Id": "req-1"}))
    assert type(error) is expected
    assert error.http_status == status
    assert error.error_code == code
    assert error.request_id == "req-1"


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_success_is_no_error(status: int) -> None:
    """2xx answers are not errors."""
    assert error_for(_answer(status, {"job_id": "j"})) is None


def test_payload_keeps_what_the_api_said() -> None:
    """The error payload carries status, code, message and request id, nothing else."""
    error = error_for(
        _answer(
            400,
            {"error_code": "DBS.200022", "error_msg": "Instance not found."},
            {"X-Request-Id": "abc"},
        )
    )
    assert error is not None
    assert error.payload() == {
        "http_status": 400,
        "error_code": "DBS.200022",
        "error_msg": "Instance not found.",
        "request_id": "abc",
    }


@pytest.mark.parametrize("body", [b"<html>Bad Gateway</html>", b"[1,2]", b"", b"\xff\xfe"])
def test_garbage_bodies_are_classified_by_status(body: bytes) -> None:
    """A body that is not the documented JSON still yields a classified error with a message."""
    error = error_for(httpx.Response(502, content=body))
    assert isinstance(error, ServerError)
    assert error.error_msg


def test_retry_after_seconds_and_dates() -> None:
    """Retry-After is read as seconds or as an HTTP date relative to now."""
    seconds = error_for(_answer(429, None, {"Retry-After": "7"}))
    assert isinstance(seconds, Throttled) and seconds.retry_after_s == 7.0
    date = error_for(
        _answer(429, None, {"Retry-After": "Thu, 01 Jan 2026 00:00:30 GMT"}), now=1767225600.0
    )  # 2026-01-01T00:00:00Z
    assert isinstance(date, Throttled) and date.retry_after_s == 30.0
    junk = error_for(_answer(429, None, {"Retry-After": "later"}))
    assert isinstance(junk, Throttled) and junk.retry_after_s is None


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (httpx.ConnectError("refused"), TransportError),
        (httpx.ConnectTimeout("slow connect"), TransportError),
        (httpx.PoolTimeout("pool"), TransportError),
        (httpx.ReadTimeout("slow answer"), Ambiguous),
        (httpx.WriteTimeout("slow send"), Ambiguous),
        (httpx.ReadError("reset"), Ambiguous),
        (httpx.WriteError("broken pipe"), Ambiguous),
        (httpx.RemoteProtocolError("dropped"), Ambiguous),
        (httpx.DecodingError("bad gzip"), Ambiguous),
    ],
)
def test_transport_failures_never_escape_raw(raised: Exception, expected: type[ApiError]) -> None:
    """Not sent -> TransportError (retry); possibly sent -> Ambiguous (reconcile first)."""
    with pytest.raises(ApiError) as info, transport_errors():
        raise raised
    assert type(info.value) is expected
    assert info.value.http_status is None
    assert info.value.__cause__ is raised
