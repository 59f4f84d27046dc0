"""The routes around a created task: jobs, configuration, delete, pause and resume.

==========================================================  ===============================
route                                                       answers
==========================================================  ===============================
``GET /v3/{project_id}/jobs?id=``                           ``{"job": {...}}``; an unknown (or
                                                            not yet visible) job: 400
                                                            ``DBS.280001`` (the simulator's
                                                            choice: the real answer is not
                                                            documented)
``GET .../replication/configuration?task_name=``            the task's configuration; unknown
                                                            task: 400 ``DBS.270022``
``DELETE .../replication`` with ``{"task_name"}``           ``{"job_id"}``; unknown task: 400
                                                            ``DBS.05000091``
``POST .../replication/pause`` / ``.../resume``             ``{"job_id"}``; stage Paused / back
==========================================================  ===============================

Each passes the same authentication and latency as the create and list calls.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from htap_sync.simulator.errors import INVALID_PARAMETER, error
from htap_sync.simulator.lifecycle import Lifecycle
from htap_sync.simulator.state import SimulatorState, Task
from htap_sync.simulator.validation import InvalidParameter, path_ids

UNKNOWN_TASK = "DBS.270022"
DELETE_MISSING = "DBS.05000091"
REPLICATION_PATH = "/v3/{project_id}/instances/{instance_id}/starrocks/databases/replication"

# Authentication and latency of one call: a refusal, or None to go on.
Guard = Callable[[Request, bytes], Awaitable[Response | None]]


def _task_name(raw: bytes | str | None) -> str:
    if isinstance(raw, bytes):
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise InvalidParameter("body", "must be a JSON object") from None
        raw = body.get("task_name") if isinstance(body, dict) else None
    if not isinstance(raw, str) or not raw:
        raise InvalidParameter("task_name", "required")
    return raw


async def _checked(
    request: Request, state: SimulatorState, guard: Guard, *, body_name: bool
) -> tuple[Any, ...] | Response:
    """(project, instance, task name, task or None) of a call on one task, or its refusal."""
    raw = await request.body()
    if (denied := await guard(request, raw)) is not None:
        return denied
    try:
        project_id, instance_id = path_ids(request)
        name = _task_name(raw if body_name else request.query_params.get("task_name"))
    except InvalidParameter as exc:
        return error(400, INVALID_PARAMETER, str(exc))
    return project_id, instance_id, name, state.task(project_id, instance_id, name)


def _configuration(task: Task, alter_error: str) -> dict[str, Any]:
    """The configuration call's answer for a task."""
    return {
        "source_instance_id": task.source_instance_id,
        "source_node_id": task.source_node_id,
        "database_info": {"source_database": task.source_database},
        "table_infos": [],
        "table_repl_config": {"repl_type": "database", "repl_scope": "all"},
        "target_database_name": task.target_database,
        "is_tables_change": False,
        "last_error_of_alter_table": alter_error,
    }


def task_routes(state: SimulatorState, lifecycle: Lifecycle, guard: Guard) -> list[Route]:
    """The jobs, configuration, delete, pause and resume routes over ``state``."""

    def checked(request: Request, *, body_name: bool) -> Awaitable[tuple[Any, ...] | Response]:
        return _checked(request, state, guard, body_name=body_name)

    async def configuration_route(request: Request) -> Response:
        state.record_task_call("configuration")
        found = await checked(request, body_name=False)
        if isinstance(found, Response):
            return found
        project_id, instance_id, name, task = found
        if task is None:
            return error(400, UNKNOWN_TASK, "The task does not exist.")
        alter_error = lifecycle.alter_error((project_id, instance_id, name))
        return JSONResponse(_configuration(task, alter_error))

    def on_task(action: str) -> Callable[[Request], Awaitable[Response]]:
        async def route(request: Request) -> Response:
            state.record_task_call(action)
            found = await checked(request, body_name=True)
            if isinstance(found, Response):
                return found
            project_id, instance_id, name, task = found
            key = (project_id, instance_id, name)
            if task is None:
                code = DELETE_MISSING if action == "delete" else UNKNOWN_TASK
                return error(400, code, "The task does not exist.")
            if action == "delete":
                state.delete_task(project_id, instance_id, name)
                lifecycle.forget(key)
            else:
                lifecycle.set_paused(key, action == "pause")
            return JSONResponse({"job_id": lifecycle.job_for(key, f"{action}StarRocksTask")})

        return route

    async def jobs_route(request: Request) -> Response:
        state.record_task_call("jobs")
        raw = await request.body()
        if (denied := await guard(request, raw)) is not None:
            return denied
        job = lifecycle.job(request.query_params.get("id", ""))
        if job is None:
            return error(400, INVALID_PARAMETER, "Invalid parameter: id: no such job")
        return JSONResponse({"job": job})

    return [
        Route("/v3/{project_id}/jobs", jobs_route, methods=["GET"]),
        Route(f"{REPLICATION_PATH}/configuration", configuration_route, methods=["GET"]),
        Route(REPLICATION_PATH, on_task("delete"), methods=["DELETE"]),
        Route(f"{REPLICATION_PATH}/pause", on_task("pause"), methods=["POST"]),
        Route(f"{REPLICATION_PATH}/resume", on_task("resume"), methods=["POST"]),
    ]
