"""The routes around a created task: jobs, configuration, delete, pause and resume.

==========================================================  ===============================
route                                                       answers
==========================================================  ===============================
``GET /v3/{project_id}/jobs?id=``                           ``{"job": {...}}``; an unknown (or
                                                            not yet visible) job: 400
                                                            ``DBS.280001`` (see below)
``GET .../replication/configuration?task_name=``            the task's configuration; unknown
                                                            task: 400 ``DBS.270022``
``DELETE .../replication`` with ``{"task_name"}``           ``{"job_id"}``; unknown task: 400
                                                            ``DBS.05000091``
``POST .../replication/pause`` / ``.../resume``             ``{"job_id"}``; stage Paused / back;
                                                            unknown task: 400 ``DBS.270022``
==========================================================  ===============================

Each passes the same authentication and latency as the create and list calls. Jobs calls are
logged per instance (``SimulatorState.job_call_times``), after authentication. Delete, pause
and resume start operation jobs (``simulator.lifecycle``): while one runs (``op_job_s``), a
delete, pause, resume or modify of the same task is answered 409 ``DBS.200019`` ("another
operation is in progress"), and a pause or resume shows in the list once its job completed.
The configuration answer is ``simulator.checks.configuration`` (camelCase ``database_info``).

What the jobs API answers for a job id it does not know is not documented. The API reference
of ShowGaussMySqlJobInfo (TaurusDB, "Obtaining Information About a Task with a Specified ID")
lists only 200, 400 "Client error" and 500, each error with an ``{error_code, error_msg}`` body,
and warns that a new job takes several seconds to become visible; the Terraform provider
(``checkGaussDBMySQLJobFinish`` in ``huaweicloud/services/taurusdb``) waits 10 s before its
first poll and treats any error as fatal, so it never shows the answer either. The simulator
therefore answers 400 with the general "invalid parameter" code, and a client must read any
4xx of the jobs API as "not there yet", never as a failed task.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from htap_sync.simulator.checks import configuration
from htap_sync.simulator.config_routes import busy
from htap_sync.simulator.errors import INVALID_PARAMETER, error
from htap_sync.simulator.lifecycle import DELETE_JOB, PAUSE_JOB, RESUME_JOB, Lifecycle
from htap_sync.simulator.state import SimulatorState
from htap_sync.simulator.validation import PROJECT_ID_RE, InvalidParameter, path_ids

UNKNOWN_TASK = "DBS.270022"
DELETE_MISSING = "DBS.05000091"
UNKNOWN_JOB = INVALID_PARAMETER  # undocumented: see the module docstring
REPLICATION_PATH = "/v3/{project_id}/instances/{instance_id}/starrocks/databases/replication"
JOB_NAMES = {"delete": DELETE_JOB, "pause": PAUSE_JOB, "resume": RESUME_JOB}

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


class TaskRoutes:
    """The jobs, configuration, delete, pause and resume routes over one simulator's state."""

    def __init__(self, state: SimulatorState, lifecycle: Lifecycle, guard: Guard) -> None:
        self.state = state
        self.lifecycle = lifecycle
        self.guard = guard

    async def configuration_route(self, request: Request) -> Response:
        self.state.record_task_call("configuration")
        found = await _checked(request, self.state, self.guard, body_name=False)
        if isinstance(found, Response):
            return found
        project_id, instance_id, name, task = found
        if task is None:
            return error(400, UNKNOWN_TASK, "The task does not exist.")
        alter_error = self.lifecycle.alter_error((project_id, instance_id, name))
        return JSONResponse(configuration(task, alter_error))

    def on_task(self, action: str) -> Callable[[Request], Awaitable[Response]]:
        async def route(request: Request) -> Response:
            self.state.record_task_call(action)
            found = await _checked(request, self.state, self.guard, body_name=True)
            if isinstance(found, Response):
                return found
            project_id, instance_id, name, task = found
            key = (project_id, instance_id, name)
            if task is None:
                code = DELETE_MISSING if action == "delete" else UNKNOWN_TASK
                return error(400, code, "The task does not exist.")
            job_id = self.lifecycle.operate(key, JOB_NAMES[action])
            if job_id is None:
                return busy()
            if action == "delete":
                self.state.delete_task(project_id, instance_id, name)
                self.lifecycle.forget(key)
            else:
                self.lifecycle.set_paused(key, action == "pause")
            return JSONResponse({"job_id": job_id})

        return route

    async def jobs_route(self, request: Request) -> Response:
        self.state.record_task_call("jobs")
        if (denied := await self.guard(request, await request.body())) is not None:
            return denied
        project_id: str = request.path_params["project_id"]
        job_id = request.query_params.get("id", "")
        if not PROJECT_ID_RE.fullmatch(project_id):
            return error(
                400,
                INVALID_PARAMETER,
                "Invalid parameter: project_id: must be 32 letters or digits",
            )
        if not job_id:
            return error(400, INVALID_PARAMETER, "Invalid parameter: id: required")
        owner = self.lifecycle.job_owner(job_id)
        instance_id = owner[1] if owner is not None and owner[0] == project_id else None
        self.state.calls.record("jobs", project_id, instance_id, self.lifecycle.clock())
        job = self.lifecycle.job(job_id, project_id)
        if job is None:
            return error(400, UNKNOWN_JOB, "Invalid parameter: id: no such job")
        return JSONResponse({"job": job})


def task_routes(state: SimulatorState, lifecycle: Lifecycle, guard: Guard) -> list[Route]:
    """The jobs, configuration, delete, pause and resume routes over ``state``."""
    routes = TaskRoutes(state, lifecycle, guard)
    return [
        Route("/v3/{project_id}/jobs", routes.jobs_route, methods=["GET"]),
        Route(f"{REPLICATION_PATH}/configuration", routes.configuration_route, methods=["GET"]),
        Route(REPLICATION_PATH, routes.on_task("delete"), methods=["DELETE"]),
        Route(f"{REPLICATION_PATH}/pause", routes.on_task("pause"), methods=["POST"]),
        Route(f"{REPLICATION_PATH}/resume", routes.on_task("resume"), methods=["POST"]),
    ]
