"""The ingress's one error shape: a status and errors ``{field, rule, message}``."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse


class Problem(Exception):
    """An answer other than success: a status and one error naming the part at fault."""

    def __init__(
        self,
        status: int,
        field: str,
        rule: str,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{field}: {rule}")
        self.status = status
        self.errors = [{"field": field, "rule": rule, "message": f"{field}: {rule}"}]
        self.headers = headers or {}
        self.extra = extra or {}

    def response(self) -> JSONResponse:
        """The JSON answer."""
        return JSONResponse({**self.extra, "errors": self.errors}, self.status, self.headers)
