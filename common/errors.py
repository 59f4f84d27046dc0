"""The one error tree of taurus-htap-sync.

```
HtapSyncError
├── SettingsError (ValueError)       a setting is wrong; names the environment variable
├── RequestInvalid (ValueError)      a request breaks the API's rules; carries field errors
├── TicketConflict                   another request already holds this task name
├── TicketNotFound (LookupError)     no ticket with that id (never an eternal "pending")
└── ApiError                         an answer (or no answer) from the TaurusDB API
    ├── Retryable                    try again later; nothing was created
    │   ├── Throttled                429 / APIGW.0308: gateway flow control
    │   ├── InProgress               409 "another operation is in progress"
    │   └── TransportError           the request never reached the server
    ├── Ambiguous                    sent, outcome unknown: the task may exist
    │   └── ServerError              500-504 on the create call
    └── Permanent                    never retried
        ├── Rejected                 400/403/409 and other 4xx: bad parameters, name exists, ...
        ├── AuthFailed               401 / APIGW.0301
        └── NotFound                 404
```

A 5xx on the create call is *ambiguous*, not merely retryable: the server may have created the
task before failing, so the worker reconciles through the list call before it posts again.
"""

from __future__ import annotations

from typing import Any


class HtapSyncError(Exception):
    """Root of every error this project raises on purpose."""


class SettingsError(HtapSyncError, ValueError):
    """A setting is missing or wrong; the message names each environment variable at fault."""


class RequestInvalid(HtapSyncError, ValueError):
    """A creation request breaks the API's documented rules.

    Attributes:
        errors: one ``{"field": ..., "rule": ..., "message": ...}`` mapping per broken rule.
    """

    def __init__(self, errors: list[dict[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(e["message"] for e in errors) or "invalid request")


class TicketConflict(HtapSyncError):
    """A different request under the same (project, instance, task name) is in flight or done."""

    def __init__(self, ticket: str, state: str) -> None:
        self.ticket = ticket
        self.state = state
        super().__init__(
            f"ticket {ticket} is {state} with a different request under the same task name"
        )

    @property
    def errors(self) -> list[dict[str, str]]:
        """The conflict as ``{field, rule, message}`` errors, the shape of every other error."""
        rule = f"another request holds this task name ({self.state})"
        return [{"field": "task_name", "rule": rule, "message": f"task_name: {rule}"}]


class TicketNotFound(HtapSyncError, LookupError):
    """No ticket with this id exists (never submitted, or its result expired)."""

    def __init__(self, ticket: str) -> None:
        self.ticket = ticket
        super().__init__(f"ticket {ticket} not found")


class ApiError(HtapSyncError):
    """An answer, or the lack of one, from the TaurusDB API.

    Attributes:
        http_status: the HTTP status, or None when no answer arrived.
        error_code: the API's ``error_code`` (``DBS.200022``, ``APIGW.0308``...), if any.
        error_msg: the API's ``error_msg``, or a description of the transport failure.
        request_id: the ``X-Request-Id`` response header, if any.
        retry_after_s: a ``Retry-After`` the server sent, in seconds, if any.
    """

    def __init__(
        self,
        error_msg: str,
        *,
        http_status: int | None = None,
        error_code: str | None = None,
        request_id: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        self.http_status = http_status
        self.error_code = error_code
        self.error_msg = error_msg
        self.request_id = request_id
        self.retry_after_s = retry_after_s
        status = f"HTTP {http_status}" if http_status is not None else "no answer"
        code = f" {error_code}" if error_code else ""
        super().__init__(f"{status}{code}: {error_msg}")

    def payload(self) -> dict[str, Any]:
        """The error as callers see it in a ticket's ``error`` field."""
        return {
            "http_status": self.http_status,
            "error_code": self.error_code,
            "error_msg": self.error_msg,
            "request_id": self.request_id,
        }


class Retryable(ApiError):
    """Nothing was created; the same request may be sent again after a wait."""


class Throttled(Retryable):
    """The gateway's flow control answered 429 (``APIGW.0308`` / ``APIG.0308``)."""


class InProgress(Retryable):
    """409: another operation is in progress on the instance; try again much later."""


class TransportError(Retryable):
    """The request never reached the server (connection refused, DNS, connect timeout)."""


class Ambiguous(ApiError):
    """The request was sent but its outcome is unknown: the task may have been created."""


class ServerError(Ambiguous):
    """500-504: the server failed, possibly after creating the task."""


class Permanent(ApiError):
    """The API refused the request for good; sending it again cannot help."""


class Rejected(Permanent):
    """400, 403, 409 (other than in-progress) and other 4xx: bad parameters or state."""


class AuthFailed(Permanent):
    """401 or ``APIGW.0301``: the credential was refused."""


class NotFound(Permanent):
    """404: the API path or the instance does not exist."""
