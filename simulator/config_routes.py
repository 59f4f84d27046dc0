"""The routes of configured creation and of a task's configuration (taurus-api.md section 8).

==========================================================  ===============================
route (under ``.../starrocks/databases``)                   answers
==========================================================  ===============================
``POST replication/database-config-check``                  ``task_name`` and the source
                                                            database's check results; creates
                                                            the task (no job id)
``POST replication/table-config-check``                     ``task_name`` and the tables' check
                                                            results; creates the task only with
                                                            ``is_create_task`` "true"
``PUT replication`` (modify)                                the check results and ``job_id``;
                                                            unknown task: 400 ``DBS.270022``;
                                                            busy task: 409 ``DBS.200019``
``GET replication/configuration/{database}``                the configuration of the task whose
                                                            *target* database it is; none: 400
                                                            ``DBS.270022``
``GET replication/database-parameters?limit=&offset=``      ``{"db_parameters": [...]}``; limit
                                                            1-100, **default 1** (as live)
``GET ?limit=&offset=&database_name=``                      ``{"databases", "total_count": 0,
                                                            "timestamp"}``: the target databases
                                                            of the instance's tasks, sorted,
                                                            ``database_name`` matched as a
                                                            substring without case; limit 1-100
                                                            (default 100); ``total_count`` is 0
                                                            whatever the count, as live
==========================================================  ===============================

A configured task waits in stage Wait until the create call (``POST .../replication``) names
it with its databases: that call starts it and answers a ``job_id`` (see ``simulator.app``).

The checks are creating calls, so they pass what a create call passes, in its order:
authentication, path and body (400 ``DBS.280001`` naming the field), unknown instances
(``DBS.200022``), the gateway's rate limit, then one fault (the script's next step, else the
seeded draw: ``created_then_500``, ``drop_after_create`` and the rest act on a check as on a
create). A check whose results are not all a success creates nothing (``simulator.checks``). A
check naming an existing task creates nothing and answers as a create would
(``existing_name``: 409 or 400 ``DBS.280005``, or 200 with the check results for ``accept``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from htap_sync.simulator.checks import PARAMETERS, check_answer, configuration, creates
from htap_sync.simulator.config import SimulatorConfig
from htap_sync.simulator.errors import INVALID_PARAMETER, TASK_NAME_EXISTS, error
from htap_sync.simulator.lifecycle import MODIFY_JOB, Lifecycle
from htap_sync.simulator.selection import CheckBody, CheckKind, parse_check_body
from htap_sync.simulator.state import SimulatorState, Task
from htap_sync.simulator.validation import InvalidParameter, path_ids, query_int

DATABASES_PATH = "/v3/{project_id}/instances/{instance_id}/starrocks/databases"
REPLICATION_PATH = f"{DATABASES_PATH}/replication"
UNKNOWN_TASK = "DBS.270022"
BUSY = "DBS.200019"  # one of the "another operation is in progress" codes (section 7)


class Gateway(Protocol):
    """What these routes share with the create route (``simulator.app``)."""

    config: SimulatorConfig

    async def guard(self, request: Request, body: bytes) -> Response | None:
        """Latency and authentication: a refusal, or None."""

    def unknown_instance(self, *instance_ids: str) -> Response | None:
        """400 ``DBS.200022`` if any id is an unknown instance."""

    async def faulted(self, project_id: str, act: Callable[[], Response]) -> Response:
        """The rate limit and one fault around ``act``, as for a create call."""


def busy() -> Response:
    """409: another operation on the task is still running."""
    return error(409, BUSY, "Another operation is in progress.")


class ConfigRoutes:
    """The configuration routes over one simulator's state."""

    def __init__(self, state: SimulatorState, lifecycle: Lifecycle, gateway: Gateway) -> None:
        self.state = state
        self.lifecycle = lifecycle
        self.gateway = gateway

    async def _body(
        self, request: Request, kind: CheckKind
    ) -> tuple[str, str, CheckBody] | Response:
        """(project, instance, body) of a configuration call, or its refusal."""
        raw = await request.body()
        if (denied := await self.gateway.guard(request, raw)) is not None:
            return denied
        try:
            project_id, instance_id = path_ids(request)
            body = parse_check_body(raw, kind)
        except InvalidParameter as exc:
            return error(400, INVALID_PARAMETER, str(exc))
        missing = self.gateway.unknown_instance(instance_id, body.source_instance_id)
        return missing or (project_id, instance_id, body)

    def check(self, kind: CheckKind) -> Callable[[Request], Awaitable[Response]]:
        """The route of the database or the table check."""

        async def route(request: Request) -> Response:
            self.state.record_task_call(f"{kind}-config-check")
            found = await self._body(request, kind)
            if isinstance(found, Response):
                return found
            project_id, instance_id, body = found
            act = lambda: self.check_now(project_id, instance_id, body, kind)  # noqa: E731
            return await self.gateway.faulted(project_id, act)

        return route

    def check_now(self, project_id: str, instance_id: str, body: CheckBody, kind: str) -> Response:
        """Answer a check, creating its task when it should."""
        answer = check_answer(body, kind)
        if (kind == "table" and not body.is_create_task) or not creates(body):
            return JSONResponse(answer)
        task = Task(
            project_id=project_id,
            instance_id=instance_id,
            task_name=body.task_name,
            source_instance_id=body.source_instance_id,
            source_node_id=body.source_node_id,
            source_database=body.source_database_name,
            target_database=body.target_database_name,
            job_id="",
            check=body,
        )
        if self.state.create_task(task):
            self.lifecycle.configured(task.key)
            return JSONResponse(answer)
        self.state.record_name_hit(task.key)
        mode = self.gateway.config.existing_name
        if mode == "accept":
            return JSONResponse(answer)
        status = 400 if mode == "reject-400" else 409
        return error(status, TASK_NAME_EXISTS, "Task name already exists.")

    async def modify_route(self, request: Request) -> Response:
        """``PUT .../replication``: change a task's configuration under a job."""
        self.state.record_task_call("modify")
        found = await self._body(request, "modify")
        if isinstance(found, Response):
            return found
        project_id, instance_id, body = found
        task = self.state.task(project_id, instance_id, body.task_name)
        if task is None:
            return error(400, UNKNOWN_TASK, "The task does not exist.")
        job_id = self.lifecycle.operate(task.key, MODIFY_JOB)
        if job_id is None:
            return busy()
        before = task.check.table_repl_config if task.check else None
        changed = dataclasses.replace(
            task,
            source_node_id=body.source_node_id,
            source_database=body.source_database_name,
            target_database=body.target_database_name,
            check=body,
            tables_changed=before != body.table_repl_config,
        )
        self.state.replace_task(changed)
        answer = check_answer(body, "database")
        return JSONResponse(
            {
                "source_database_name": answer["source_database_name"],
                "target_database_name": answer["target_database_name"],
                "source_db_config_check_results": answer["source_db_config_check_results"],
                "tbl_config_check_results": check_answer(body, "table")["tbl_config_check_results"],
                "task_name": body.task_name,
                "job_id": job_id,
            }
        )

    async def _read(self, request: Request, route: str) -> tuple[str, str] | Response:
        """(project, instance) of a read call on an instance, or its refusal."""
        self.state.record_task_call(route)
        if (denied := await self.gateway.guard(request, await request.body())) is not None:
            return denied
        try:
            project_id, instance_id = path_ids(request)
        except InvalidParameter as exc:
            return error(400, INVALID_PARAMETER, str(exc))
        return self.gateway.unknown_instance(instance_id) or (project_id, instance_id)

    async def by_database_route(self, request: Request) -> Response:
        """``GET .../configuration/{database}``: the task syncing into that target database."""
        found = await self._read(request, "configuration")
        if isinstance(found, Response):
            return found
        database = request.path_params["database"]
        tasks = [t for t in self.state.tasks(*found) if t.target_database == database]
        if not tasks:
            return error(400, UNKNOWN_TASK, "The task does not exist.")
        task = tasks[0]
        return JSONResponse(configuration(task, self.lifecycle.alter_error(task.key)))

    async def parameters_route(self, request: Request) -> Response:
        """``GET .../database-parameters``: the catalogue, a page at a time (limit default 1)."""
        found = await self._read(request, "database-parameters")
        if isinstance(found, Response):
            return found
        try:
            limit = query_int(request, "limit", default=1, low=1, high=100)
            offset = query_int(request, "offset", default=0, low=0, high=None)
        except InvalidParameter as exc:
            return error(400, INVALID_PARAMETER, str(exc))
        rows = [parameter.row() for parameter in PARAMETERS[offset : offset + limit]]
        return JSONResponse({"db_parameters": rows})

    async def databases_route(self, request: Request) -> Response:
        """``GET .../starrocks/databases``: the instance's target databases (total_count 0)."""
        found = await self._read(request, "databases")
        if isinstance(found, Response):
            return found
        try:
            limit = query_int(request, "limit", default=100, low=1, high=100)
            offset = query_int(request, "offset", default=0, low=0, high=None)
        except InvalidParameter as exc:
            return error(400, INVALID_PARAMETER, str(exc))
        part = request.query_params.get("database_name", "").lower()
        names = sorted({t.target_database for t in self.state.tasks(*found)})
        names = [name for name in names if part in name.lower()]
        payload: dict[str, Any] = {
            "databases": names[offset : offset + limit],
            "total_count": 0,
            "timestamp": int(time.time() * 1000),
        }
        return JSONResponse(payload)


def config_routes(state: SimulatorState, lifecycle: Lifecycle, gateway: Gateway) -> list[Route]:
    """The configuration routes over ``state``."""
    routes = ConfigRoutes(state, lifecycle, gateway)
    return [
        Route(
            f"{REPLICATION_PATH}/database-config-check", routes.check("database"), methods=["POST"]
        ),
        Route(f"{REPLICATION_PATH}/table-config-check", routes.check("table"), methods=["POST"]),
        Route(REPLICATION_PATH, routes.modify_route, methods=["PUT"]),
        Route(
            f"{REPLICATION_PATH}/configuration/{{database}}",
            routes.by_database_route,
            methods=["GET"],
        ),
        Route(f"{REPLICATION_PATH}/database-parameters", routes.parameters_route, methods=["GET"]),
        Route(DATABASES_PATH, routes.databases_route, methods=["GET"]),
    ]
