"""The TaurusDB HTAP client: create a sync task, find one by name. Takes an ``httpx.Client``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from htap_sync.common.errors import Ambiguous, ServerError
from htap_sync.common.models import ReplicationRequest
from htap_sync.common.settings import Settings
from htap_sync.worker.classify import error_for, transport_errors

JSON_UTF8 = "application/json;charset=utf-8"
PAGE_SIZE = 100  # the list call's maximum


def replication_path(project_id: str, instance_id: str) -> str:
    """Path of the create and list calls."""
    return f"/v3/{project_id}/instances/{instance_id}/starrocks/databases/replication"


@dataclass(frozen=True)
class Created:
    """A successful create: the API's job id and the answer's ``X-Request-Id``."""

    job_id: str
    request_id: str | None


@dataclass(frozen=True)
class Existing:
    """A sync task the list call reports."""

    task_name: str
    source_database: str
    target_database: str

    def matches(self, request: ReplicationRequest) -> bool:
        """True when this task copies the databases the request asks for."""
        return (self.source_database, self.target_database) == (
            request.source_database,
            request.target_database,
        )


class TaurusClient:
    """Calls the data-sync API through an ``httpx.Client`` it is given.

    Every failure comes out as an error of :mod:`common.errors`; no httpx exception escapes.

    Args:
        http: a client whose ``base_url`` is the API endpoint (tests pass a MockTransport).
        language: the ``X-Language`` header.
    """

    def __init__(self, http: httpx.Client, *, language: str = "en-us") -> None:
        self._http = http
        self._headers = {"Content-Type": JSON_UTF8, "X-Language": language}

    def create_replication(self, request: ReplicationRequest) -> Created:
        """POST the create call.

        Raises:
            Retryable: nothing was created (throttled, in progress, not sent).
            Ambiguous: sent, outcome unknown (timeout, drop, 5xx, a 2xx without a job id).
            Permanent: refused for good.
        """
        body = json.dumps(request.body(), separators=(",", ":")).encode()
        with transport_errors():
            response = self._http.post(
                replication_path(request.project_id, request.instance_id),
                content=body,
                headers=self._headers,
            )
        error = error_for(response)
        if error is not None:
            raise error
        request_id = response.headers.get("X-Request-Id")
        job_id = _json(response).get("job_id")
        if not isinstance(job_id, str) or not job_id:
            raise ServerError(
                "success answer without a job_id",
                http_status=response.status_code,
                request_id=request_id,
            )
        return Created(job_id=job_id, request_id=request_id)

    def find_replication(self, request: ReplicationRequest) -> Existing | None:
        """Page through the list call for a task named like ``request.task_name``.

        Raises:
            ApiError: as :meth:`create_replication` (an Ambiguous here changes nothing).
        """
        path = replication_path(request.project_id, request.instance_id)
        offset = 0
        while True:
            with transport_errors():
                response = self._http.get(
                    path,
                    params={"limit": PAGE_SIZE, "offset": offset},
                    headers=self._headers,
                )
            error = error_for(response)
            if error is not None:
                raise error
            data = _json(response)
            page = data.get("replications")
            if not isinstance(page, list):
                raise Ambiguous("list answer without replications", http_status=200)
            for item in page:
                if isinstance(item, dict) and item.get("task_name") == request.task_name:
                    return Existing(
                        task_name=request.task_name,
                        source_database=str(item.get("source_database", "")),
                        target_database=str(item.get("target_database", "")),
                    )
            offset += len(page)
            total = _int(data.get("total_count"))
            if not page or (total is not None and offset >= total):
                return None


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _int(value: Any) -> int | None:
    # total_count is documented as a string; accept a number too.
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def make_http(
    settings: Settings,
    transport: httpx.BaseTransport | None = None,
    auth: httpx.Auth | None = None,
) -> httpx.Client:
    """The worker process's one httpx client: TLS verified, timeouts from settings."""
    return httpx.Client(
        base_url=settings.require_endpoint,
        timeout=httpx.Timeout(settings.request_timeout_s),
        auth=auth,
        verify=True,
        transport=transport,
        headers={"User-Agent": "taurus-htap-sync"},
        follow_redirects=False,
    )
