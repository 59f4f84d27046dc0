"""The simulated TaurusDB HTAP endpoint: the create and list sync-task routes plus admin routes.

Answers follow taurus-api.md where it documents them. Where the real service is undocumented,
these are the simulator's own choices (a client must classify by HTTP status, not by code):

==========================================  ======  ==============  ==========================
situation                                   status  error_code      documented?
==========================================  ======  ==============  ==========================
bad path id, body, field or query value     400     DBS.280001      code is the simulator's
instance in ``unknown_instances``           400     DBS.200022      yes (create page example)
``task_name`` already exists on instance    409     DBS.280005      no: the simulator's choice
injected server failure (``fail_rate``)     500     DBS.108000      yes (general error table)
missing or wrong credentials                401     APIGW.0301      yes (gateway)
no such route or method                     404     APIGW.0101      gateway's usual answer
==========================================  ======  ==============  ==========================

Both the path's HTAP instance and the body's ``source_instance_id`` are looked up in
``unknown_instances``. A create call is checked in this order: authentication, path and body,
unknown instance, injected fault, duplicate name; so a fault never hides a 4xx, and nothing is
created when a call fails. Every response carries an ``X-Request-Id`` header.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from simulator.auth import Authenticator, Clock
from simulator.config import SimulatorConfig
from simulator.faults import CreateFault, Faults, Sleep
from simulator.state import SimulatorState, Task

REPLICATION_PATH = "/v3/{project_id}/instances/{instance_id}/starrocks/databases/replication"

INVALID_PARAMETER = "DBS.280001"
INSTANCE_NOT_FOUND = "DBS.200022"
TASK_NAME_EXISTS = "DBS.280005"
INTERNAL_ERROR = "DBS.108000"
AUTH_FAILED = "APIGW.0301"
NO_SUCH_API = "APIGW.0101"

_PROJECT_ID_RE = re.compile(r"[A-Za-z0-9]{32}")
_INSTANCE_ID_RE = re.compile(r"[A-Za-z0-9]{36}")
_NAME_RE = re.compile(r"[A-Za-z0-9_]+")
_DIGITS_RE = re.compile(r"[0-9]{1,9}")  # more digits than that is out of range anyway
# field -> (min length, max length) for the names of the create body.
_NAME_LENGTHS = {"source_database": (3, 1024), "target_database": (3, 128), "task_name": (3, 128)}
_BODY_FIELDS = frozenset({"source_instance_id", "source_node_id", *_NAME_LENGTHS})
_MAX_LIMIT = 100


class _InvalidParameter(Exception):
    """A request value broke a rule; becomes 400 DBS.280001."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"Invalid parameter: {field}: {rule}")


@dataclass(frozen=True)
class _CreateBody:
    source_instance_id: str
    source_node_id: str | None
    source_database: str
    target_database: str
    task_name: str


def _error(status_code: int, error_code: str, error_msg: str) -> JSONResponse:
    return JSONResponse({"error_code": error_code, "error_msg": error_msg}, status_code=status_code)


def _path_ids(request: Request) -> tuple[str, str]:
    project_id: str = request.path_params["project_id"]
    instance_id: str = request.path_params["instance_id"]
    if not _PROJECT_ID_RE.fullmatch(project_id):
        raise _InvalidParameter("project_id", "must be 32 letters or digits")
    if not _INSTANCE_ID_RE.fullmatch(instance_id):
        raise _InvalidParameter("instance_id", "must be 36 letters or digits")
    return project_id, instance_id


def _parse_create_body(raw: bytes) -> _CreateBody:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _InvalidParameter("body", "must be a JSON object") from None
    if not isinstance(body, dict):
        raise _InvalidParameter("body", "must be a JSON object")
    unknown = sorted(set(body) - _BODY_FIELDS)
    if unknown:
        raise _InvalidParameter(unknown[0], "unknown field")

    source_instance_id = body.get("source_instance_id")
    if source_instance_id is None:
        raise _InvalidParameter("source_instance_id", "required")
    if not isinstance(source_instance_id, str) or not _INSTANCE_ID_RE.fullmatch(source_instance_id):
        raise _InvalidParameter("source_instance_id", "must be 36 letters or digits")
    # Optional: null is taken as "omitted" (the primary node), as clients often send it so.
    source_node_id = body.get("source_node_id")
    if source_node_id is not None and not isinstance(source_node_id, str):
        raise _InvalidParameter("source_node_id", "must be a string")

    names: dict[str, str] = {}
    for field, (shortest, longest) in _NAME_LENGTHS.items():
        value = body.get(field)
        if value is None:
            raise _InvalidParameter(field, "required")
        if not isinstance(value, str) or not shortest <= len(value) <= longest:
            raise _InvalidParameter(field, f"must be {shortest}-{longest} characters")
        if not _NAME_RE.fullmatch(value):
            raise _InvalidParameter(field, "only letters, digits and _ are allowed")
        names[field] = value
    return _CreateBody(
        source_instance_id=source_instance_id,
        source_node_id=source_node_id,
        source_database=names["source_database"],
        target_database=names["target_database"],
        task_name=names["task_name"],
    )


def _query_int(request: Request, name: str, *, default: int, low: int, high: int | None) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    rule = f"must be an integer from {low} to {high}" if high else f"must be an integer >= {low}"
    if not _DIGITS_RE.fullmatch(raw):
        raise _InvalidParameter(name, rule)
    value = int(raw)
    if value < low or (high is not None and value > high):
        raise _InvalidParameter(name, rule)
    return value


def _header_text(value: str) -> str:
    # ASGI servers hand headers over as latin-1; the SDK signs the UTF-8 text they encode.
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


class _RequestIdMiddleware:
    """Adds an ``X-Request-Id`` (uuid4 hex) to every HTTP response, errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("X-Request-Id", request_id)
            await send(message)

        await self._app(scope, receive, send_with_id)


async def _no_such_api(request: Request, exc: Exception) -> Response:
    # The gateway matches method and path together: a wrong method is just another unknown API.
    return _error(404, NO_SUCH_API, "The API does not exist or has not been published.")


def make_app(
    config: SimulatorConfig,
    state: SimulatorState,
    *,
    clock: Clock | None = None,
    sleep: Sleep | None = None,
) -> Starlette:
    """Build the simulator's ASGI app.

    Args:
        config: Credentials to accept, unknown instances and faults.
        state: Store the app writes tasks and counters to; the caller keeps it to inspect.
        clock: Current time for the ``X-Sdk-Date`` check (aware datetime); tests inject one.
        sleep: Awaitable sleep used for ``latency_ms``; tests inject one.

    Returns:
        A Starlette app with the create, list and ``/_sim/*`` admin routes.
    """
    authenticator = Authenticator(config, clock=clock)
    faults = Faults(config, sleep=sleep)

    async def auth_failure(request: Request, body: bytes) -> Response | None:
        if not authenticator.enabled:
            return None
        reason = authenticator.failure(
            method=request.method,
            path=request.scope["path"],
            query_string=request.scope["query_string"],
            headers={name: _header_text(value) for name, value in request.headers.items()},
            body=body,
        )
        if reason is None:
            return None
        return _error(401, AUTH_FAILED, f"Incorrect IAM authentication information: {reason}")

    def unknown_instance(*instance_ids: str) -> Response | None:
        if any(i in config.unknown_instances for i in instance_ids):
            return _error(400, INSTANCE_NOT_FOUND, "Instance not found.")
        return None

    async def create_task(request: Request) -> Response:
        await faults.delay()
        raw = await request.body()
        if (denied := await auth_failure(request, raw)) is not None:
            return denied
        try:
            project_id, instance_id = _path_ids(request)
            body = _parse_create_body(raw)
        except _InvalidParameter as exc:
            return _error(400, INVALID_PARAMETER, str(exc))
        if (missing := unknown_instance(instance_id, body.source_instance_id)) is not None:
            return missing
        if faults.create_fault() is CreateFault.FAIL:
            return _error(500, INTERNAL_ERROR, "Internal server error.")
        task = Task(
            project_id=project_id,
            instance_id=instance_id,
            task_name=body.task_name,
            source_instance_id=body.source_instance_id,
            source_node_id=body.source_node_id,
            source_database=body.source_database,
            target_database=body.target_database,
            job_id=uuid.uuid4().hex,
        )
        if not state.create_task(task):
            return _error(409, TASK_NAME_EXISTS, "Task name already exists.")
        return JSONResponse({"job_id": task.job_id})

    async def create_route(request: Request) -> Response:
        # Counted on arrival, so calls that fail later (401, 400, 500) are counted too.
        state.record_create_call()
        response = await create_task(request)
        state.record_create_answer(response.status_code)
        return response

    async def list_route(request: Request) -> Response:
        await faults.delay()
        if (denied := await auth_failure(request, await request.body())) is not None:
            return denied
        try:
            project_id, instance_id = _path_ids(request)
            limit = _query_int(request, "limit", default=_MAX_LIMIT, low=1, high=_MAX_LIMIT)
            offset = _query_int(request, "offset", default=0, low=0, high=None)
        except _InvalidParameter as exc:
            return _error(400, INVALID_PARAMETER, str(exc))
        if (missing := unknown_instance(instance_id)) is not None:
            return missing
        total, page = state.page(project_id, instance_id, limit=limit, offset=offset)
        payload: dict[str, Any] = {
            # A string, as the real API sends it.
            "total_count": str(total),
            "replications": [task.to_replication() for task in page],
        }
        return JSONResponse(payload)

    async def stats_route(request: Request) -> Response:
        return JSONResponse(state.snapshot())

    async def healthz_route(request: Request) -> Response:
        return JSONResponse({"ok": True})

    routes = [
        Route(REPLICATION_PATH, create_route, methods=["POST"]),
        Route(REPLICATION_PATH, list_route, methods=["GET"]),
        Route("/_sim/stats", stats_route, methods=["GET"]),
        Route("/_sim/healthz", healthz_route, methods=["GET"]),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(_RequestIdMiddleware)],
        exception_handlers={404: _no_such_api, 405: _no_such_api},
    )
