"""Error answers: the API's ``{error_code, error_msg}`` body and its codes, and IAM's body."""

from __future__ import annotations

from starlette.responses import JSONResponse

INVALID_PARAMETER = "DBS.280001"
INSTANCE_NOT_FOUND = "DBS.200022"
TASK_NAME_EXISTS = "DBS.280005"
INTERNAL_ERROR = "DBS.108000"
OPERATION_IN_PROGRESS = "DBS.200047"
THROTTLED = "APIGW.0308"
AUTH_FAILED = "APIGW.0301"
NO_SUCH_API = "APIGW.0101"

# The limit an injected ``throttle`` fault reports: the gateway's default per API.
DEFAULT_GATEWAY_LIMIT = "200"


def throttled_message(limit: str) -> str:
    """The gateway's 429 message for a limit of ``limit`` calls a second."""
    return (
        "The throttling threshold has been reached: "
        f"policy user over ratelimit,limit:{limit},time:1 second"
    )


THROTTLED_MSG = throttled_message(DEFAULT_GATEWAY_LIMIT)


def error(status_code: int, error_code: str, error_msg: str) -> JSONResponse:
    """An error answer with the API's body."""
    return JSONResponse({"error_code": error_code, "error_msg": error_msg}, status_code=status_code)


def internal_error() -> JSONResponse:
    """500 ``DBS.108000``."""
    return error(500, INTERNAL_ERROR, "Internal server error.")


def throttled(retry_after_s: int | None, limit: str = DEFAULT_GATEWAY_LIMIT) -> JSONResponse:
    """429 ``APIGW.0308`` naming ``limit``, with ``Retry-After`` unless it is None."""
    response = error(429, THROTTLED, throttled_message(limit))
    if retry_after_s is not None:
        response.headers["Retry-After"] = str(retry_after_s)
    return response


# IAM is Keystone-compatible and answers errors in Keystone's shape, not the gateway's.
_IAM_TITLES = {400: "Bad Request", 401: "Unauthorized"}


def iam_error(status_code: int, message: str) -> JSONResponse:
    """An IAM error answer: ``{"error": {"code": status, "message": ..., "title": ...}}``."""
    title = _IAM_TITLES[status_code]
    return JSONResponse(
        {"error": {"code": status_code, "message": message, "title": title}},
        status_code=status_code,
    )
