"""The TaurusDB HTAP client: create, list and look up sync tasks and jobs (over httpx)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx

from htap_sync.common.errors import Ambiguous, NotFound, Rejected, ServerError
from htap_sync.common.models import ReplicationRequest
from htap_sync.common.settings import Settings
from htap_sync.worker.api.aio import LoopTransport, send_many
from htap_sync.worker.api.classify import error_for, transport_errors

JSON_UTF8 = "application/json;charset=utf-8"
PAGE_SIZE = 100  # the list call's maximum
UNKNOWN_TASK_CODE = "DBS.270022"  # the configuration call's answer for an unknown task
_URLS_KEPT = 4096  # create URLs parsed and kept (one per instance)


def replication_path(project_id: str, instance_id: str) -> str:
    """Path of the create and list calls."""
    return f"/v3/{project_id}/instances/{instance_id}/starrocks/databases/replication"


@dataclass(frozen=True)
class Created:
    """A successful create: the API's job id, the answer's ``X-Request-Id`` and status."""

    job_id: str
    request_id: str | None
    http_status: int = 200


@dataclass(frozen=True)
class TaskRow:
    """One row of the list call: a sync task and where it stands.

    ``stage`` and ``status`` keep the API's spelling; compare them through the properties,
    which ignore case (the live service answers "Incremental", the SDK documents "incremental").
    """

    task_name: str
    source_database: str
    target_database: str
    stage: str | None = None
    status: str | None = None
    percentage: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_api(cls, item: dict[str, Any]) -> TaskRow:
        """Build a row from the API's JSON object (unknown fields kept in ``raw``)."""

        def text(name: str) -> str | None:
            value = item.get(name)
            return None if value is None else str(value)

        return cls(
            task_name=str(item.get("task_name", "")),
            source_database=str(item.get("source_database", "")),
            target_database=str(item.get("target_database", "")),
            stage=text("stage"),
            status=text("status"),
            percentage=text("percentage"),
            raw=dict(item),
        )

    @property
    def stage_key(self) -> str:
        """The stage in lower case ('' when absent)."""
        return (self.stage or "").lower()

    @property
    def cancelled(self) -> bool:
        """A cancelled task is no longer anyone's: it does not count as ours."""
        return self.stage_key == "cancelled"

    def matches(self, request: ReplicationRequest) -> bool:
        """True when this task copies the databases the request asks for."""
        return (self.source_database, self.target_database) == (
            request.source_database,
            request.target_database,
        )


# What reconciliation and following get back from a lookup by name.
Existing = TaskRow


@dataclass(frozen=True)
class Job:
    """A job of the jobs API (``GET /v3/{project_id}/jobs?id=``)."""

    job_id: str
    status: str
    fail_reason: str | None = None

    @property
    def failed(self) -> bool:
        """The job ended in failure (compared without case)."""
        return self.status.lower() == "failed"

    @property
    def ended(self) -> bool:
        """The job will not change any more."""
        return self.status.lower() in {"completed", "failed", "canceled", "cancelled"}


class TaurusClient:
    """Calls the data-sync API through an ``httpx.Client`` it is given.

    Every failure comes out as an error of :mod:`common.errors`; no httpx exception escapes.

    Args:
        http: a client whose ``base_url`` is the API endpoint (tests pass a MockTransport).
        language: the ``X-Language`` header.
        together: ``http``'s transport when it can send many requests at once (the batch
            path's event-loop bridge): :meth:`create_replications` then sends them together.
    """

    def __init__(
        self, http: httpx.Client, *, language: str = "en-us", together: LoopTransport | None = None
    ) -> None:
        self._http = http
        self._together = together
        self._urls: dict[str, httpx.URL] = {}
        self._headers = {"Content-Type": JSON_UTF8, "X-Language": language}

    def create_replication(self, request: ReplicationRequest) -> Created:
        """POST the create call.

        Raises:
            Retryable: nothing was created (throttled, in progress, not sent).
            Ambiguous: sent, outcome unknown (timeout, drop, 5xx, a 2xx without a job id).
            Permanent: refused for good.
        """
        with transport_errors():
            response = self._http.send(self._create_request(request))
        return _created(response)

    def create_replications(
        self, requests: Sequence[ReplicationRequest]
    ) -> list[Created | Exception]:
        """POST a create call for each request, all in flight together when the client was
        given a ``together`` transport (else one after the other): each one's
        :class:`Created`, or what :meth:`create_replication` would have raised."""
        if self._together is None:
            return [_outcome(partial(self.create_replication, r)) for r in requests]
        built = [self._create_request(request) for request in requests]
        answers = send_many(self._http, self._together, built)
        return [_outcome(partial(_created_from, a)) for a in answers]

    def _create_request(self, request: ReplicationRequest) -> httpx.Request:
        body = json.dumps(request.body(), separators=(",", ":")).encode()
        url = self._url(replication_path(request.project_id, request.instance_id))
        return self._http.build_request("POST", url, content=body, headers=self._headers)

    def _url(self, path: str) -> httpx.URL:
        """The absolute URL of ``path`` on the endpoint, as httpx joins it, parsed once per
        path (parsing it for every call was a tenth of a batched ticket's CPU)."""
        url = self._urls.get(path)
        if url is None:
            if len(self._urls) >= _URLS_KEPT:
                self._urls.clear()
            url = self._urls[path] = self._http.build_request("GET", path).url
        return url

    def find_replication(
        self,
        request: ReplicationRequest,
        *,
        include_cancelled: bool = False,
        before_page: Callable[[], None] | None = None,
    ) -> TaskRow | None:
        """The live (not Cancelled) task named like ``request.task_name``, if the list has one;
        with ``include_cancelled``, a Cancelled one when no live one exists.

        Pages only as far as a live task of that name is found.

        Raises:
            ApiError: as :meth:`create_replication` (an Ambiguous here changes nothing).
        """
        cancelled: TaskRow | None = None
        rows = self.iter_replications(
            request.project_id, request.instance_id, before_page=before_page
        )
        for row in rows:
            if row.task_name != request.task_name:
                continue
            if not row.cancelled:
                return row
            cancelled = cancelled or row
        return cancelled if include_cancelled else None

    def list_replications(
        self,
        project_id: str,
        instance_id: str,
        *,
        before_page: Callable[[], None] | None = None,
    ) -> list[TaskRow]:
        """Every sync task of an instance (see :meth:`iter_replications`)."""
        return list(self.iter_replications(project_id, instance_id, before_page=before_page))

    def iter_replications(
        self,
        project_id: str,
        instance_id: str,
        *,
        before_page: Callable[[], None] | None = None,
    ) -> Iterator[TaskRow]:
        """The sync tasks of an instance, one list call per page of 100, as they are read.

        ``before_page`` runs before each page after the first (the caller paid for the first):
        every list call passes the gate, so paging pays a token per page.

        Raises:
            ApiError: as :meth:`create_replication`.
            MustWait: from ``before_page``.
        """
        path = replication_path(project_id, instance_id)
        offset = 0
        while True:
            if offset and before_page is not None:
                before_page()
            data = self._get(path, {"limit": PAGE_SIZE, "offset": offset})
            page = data.get("replications")
            if not isinstance(page, list):
                raise Ambiguous("list answer without replications", http_status=200)
            for item in page:
                if isinstance(item, dict):
                    yield TaskRow.from_api(item)
            offset += len(page)
            total = _int(data.get("total_count"))
            if not page or (total is not None and offset >= total):
                return

    def get_job(self, project_id: str, job_id: str) -> Job | None:
        """The create job's status; None while the jobs API does not know it yet.

        A new job can take a few seconds to appear (taurus-api.md section 7), so "not found"
        is no failure: any 4xx other than throttling and auth reads as "not there yet".

        Raises:
            Retryable: throttled, server error, transport error.
            AuthFailed: the credential was refused.
        """
        try:
            data = self._get(f"/v3/{project_id}/jobs", {"id": job_id})
        except (Rejected, NotFound):
            return None
        job = data.get("job")
        if not isinstance(job, dict) or not job.get("status"):
            return None
        reason = job.get("fail_reason")
        return Job(
            job_id=job_id, status=str(job["status"]), fail_reason=str(reason) if reason else None
        )

    def get_configuration(
        self, project_id: str, instance_id: str, task_name: str
    ) -> dict[str, Any] | None:
        """A task's configuration; None for a task the service does not know (``DBS.270022``).

        Raises:
            ApiError: as :meth:`create_replication`, except that unknown task.
        """
        path = f"{replication_path(project_id, instance_id)}/configuration"
        try:
            return self._get(path, {"task_name": task_name})
        except Rejected as exc:
            if exc.error_code == UNKNOWN_TASK_CODE:
                return None
            raise

    def send_json(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """Send ``body`` as JSON with ``method`` (POST, PUT, DELETE) to ``path``; the answer's
        JSON object ({} when it has none).

        Raises:
            ApiError: as :meth:`create_replication`.
        """
        content = json.dumps(body, separators=(",", ":")).encode()
        url = self._url(path)
        built = self._http.build_request(method, url, content=content, headers=self._headers)
        with transport_errors():
            response = self._http.send(built)
        error = error_for(response)
        if error is not None:
            raise error
        return _json(response)

    def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        with transport_errors():
            response = self._http.get(path, params=params, headers=self._headers)
        error = error_for(response)
        if error is not None:
            raise error
        return _json(response)


def _created(response: httpx.Response) -> Created:
    """The create call's answer read: its job id, or the error it means."""
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
    return Created(job_id=job_id, request_id=request_id, http_status=response.status_code)


def _created_from(answer: httpx.Response | Exception) -> Created:
    """A fanned-out send's answer read, or its failure raised as :func:`transport_errors`
    says."""
    if isinstance(answer, Exception):
        with transport_errors():
            raise answer
    return _created(answer)


def _outcome(call: Callable[[], Created]) -> Created | Exception:
    try:
        return call()
    except Exception as exc:  # each request's failure is its own
        return exc


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
        base_url=settings.cloud.require_endpoint,
        timeout=httpx.Timeout(settings.cloud.request_timeout_s),
        auth=auth,
        verify=True,
        transport=transport,
        headers={"User-Agent": "taurus-htap-sync"},
        follow_redirects=False,
    )
