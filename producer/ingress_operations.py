"""The ingress's routes of the operations on created tasks (:mod:`.operations`):

```
POST /v1/operations/pause    {"tickets": [...]} or {"instance_id": ..., "all": true}
POST /v1/operations/resume   the same
POST /v1/operations/delete   the same
POST /v1/operations/modify   one request object whose selection becomes its task's
```

Each operation is a ticket, polled at ``GET /v1/replications/{ticket}`` like a creation's. A
list answers one result per task: 202 when every one was accepted, 207 when some were; when
none was, 404 if every one names no task, 409 if every one is a conflict, else 422; 200 with
no results when ``all`` found no task created on the instance.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from htap_sync.common.errors import RequestInvalid, TicketConflict
from htap_sync.common.models import (
    SELECTION_FIELDS,
    InstanceId,
    Operation,
    ProjectId,
    _field_error,
)
from htap_sync.producer.api import Producer
from htap_sync.producer.ingress_models import (
    EXAMPLE,
    TICKET_LINK,
    TICKET_PATTERN,
    Conflict,
    Error,
    Errors,
    NewReplication,
    NewReplicationDefaulted,
    TicketId,
    answer,
    inlined,
)
from htap_sync.producer.operations import OperationReceipt, Target
from htap_sync.producer.problems import Problem


class OperationTargets(BaseModel):
    """The tasks an operation applies to: the tasks of create tickets, or every task this
    deployment created on an instance (``all``: true)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        title="OperationTargets",
        json_schema_extra={"examples": [{"tickets": ["tk_" + "3f" * 16]}]},
    )

    tickets: list[TicketId] | None = Field(
        default=None, min_length=1, description="Create tickets (an operation ticket: its task)."
    )
    instance_id: InstanceId | None = Field(default=None, description="With all: true.")
    project_id: ProjectId | None = Field(
        default=None, description="With instance_id; defaults to HTAP_SYNC_PROJECT_ID."
    )
    all: bool = Field(default=False, description="Every task created on instance_id.")


class OperationItem(BaseModel):
    """What became of the operation on one task."""

    model_config = ConfigDict(extra="forbid")

    target: str = Field(description="The create ticket, or the task, it was asked for.")
    outcome: Literal["queued", "duplicate", "redriven", "conflict", "not_found", "invalid"]
    ticket: TicketId | None = Field(default=None, description="The operation's ticket.")
    operation: Operation | None = None
    task_ref: str | None = Field(default=None, description="<instance_id>/<task_name>")
    errors: list[Error] = Field(default_factory=list)


class OperationResults(BaseModel):
    """One result per task, in order."""

    model_config = ConfigDict(extra="forbid")

    results: list[OperationItem]
    tickets: list[TicketId] = Field(description="The accepted operations' tickets, in order.")
    accepted: int = Field(ge=0)
    rejected: int = Field(ge=0)


def _item(receipt: OperationReceipt) -> dict[str, Any]:
    return {"errors": [], **receipt.to_json()}


def results_answer(receipts: list[OperationReceipt]) -> Response:
    """The list's answer and its status (see the module docstring)."""
    items = [_item(r) for r in receipts]
    tickets = [r.ticket for r in receipts if r.accepted and r.ticket]
    body = {
        "results": items,
        "tickets": tickets,
        "accepted": len(tickets),
        "rejected": len(receipts) - len(tickets),
    }
    if not receipts:
        return JSONResponse(body, 200)
    outcomes = {r.outcome for r in receipts}
    if tickets:
        status = 202 if len(tickets) == len(receipts) else 207
    elif outcomes == {"not_found"}:
        status = 404
    elif outcomes == {"conflict"}:
        status = 409
    else:
        status = 422
    return JSONResponse(body, status)


async def _read(request: Request, limit: int) -> Any:
    """The ingress's own body reader (streamed, size-capped; see ``ingress.read_json``)."""
    from htap_sync.producer.ingress import read_json  # it imports the routes: at call time

    return await read_json(request, limit)


class OperationRoutes:
    """The handlers; each calls ``producer.operations`` in the thread pool."""

    def __init__(self, producer: Producer, limit: int, max_items: int) -> None:
        self.producer = producer
        self.limit = limit
        self.max_items = max_items

    def on_tasks(self, operation: Operation) -> Any:
        async def handler(request: Request) -> Response:
            data = await _read(request, self.limit)
            try:
                body = OperationTargets.model_validate(data)
            except ValidationError as exc:
                return JSONResponse({"errors": [_field_error(e) for e in exc.errors()]}, 422)
            if body.tickets is not None and len(body.tickets) > self.max_items:
                raise Problem(422, "tickets", f"1 to {self.max_items} tickets")
            if (body.tickets is None) == (body.instance_id is None) or (
                body.instance_id is not None and not body.all
            ):
                raise Problem(422, "body", 'give tickets, or instance_id with "all": true')
            receipts = await run_in_threadpool(self._submit, operation, body)
            return results_answer(receipts)

        handler.__name__ = f"{operation}_tasks"
        return handler

    def _submit(self, operation: Operation, body: OperationTargets) -> list[OperationReceipt]:
        ops = self.producer.operations
        targets: list[Target]
        if body.tickets is not None:
            targets = ops.of_tickets(operation, body.tickets)
        else:
            assert body.instance_id is not None  # checked by the handler
            targets = ops.of_instance(operation, body.instance_id, body.project_id)
        return list(ops.submit_all(targets))

    async def modify(self, request: Request) -> Response:
        data = await _read(request, self.limit)
        if not isinstance(data, dict):
            raise Problem(422, "body", "must be an object")
        try:
            receipt = await run_in_threadpool(self.producer.operations.modify, data)
        except RequestInvalid as exc:
            return JSONResponse(Errors(errors=exc.errors).model_dump(), 422)
        except TicketConflict as exc:
            conflict = Conflict(ticket=exc.ticket, state=exc.state, errors=exc.errors)
            return JSONResponse(conflict.model_dump(mode="json"), 409)
        location = request.scope.get("root_path", "") + f"/v1/replications/{receipt.ticket}"
        body = {"errors": [], **receipt.to_json(), "tickets": [receipt.ticket]}
        return JSONResponse(body, 202, {"Location": location})


class ModifyAccepted(OperationItem):
    """An accepted modify: its ticket (poll it at GET /v1/replications/{ticket})."""

    tickets: list[TicketId] = Field(min_length=1, max_length=1)


_DOCS = {
    "pause": "Pause tasks: done when the list shows stage Paused.",
    "resume": "Resume tasks: done when the list shows stage Full or Incremental.",
    "delete": "Delete tasks: done when the list no longer shows them (already gone counts).",
}


def add_operation_routes(
    app: FastAPI,
    producer: Producer,
    settings: Any,
    deps: list[Any],
    auth: dict[int | str, dict[str, Any]],
    common: dict[int | str, dict[str, Any]],
    *,
    defaulted: bool = False,
) -> None:
    """The operation routes on ``app`` (``common``: the 413/415/400/500/503 answers;
    ``defaulted``: project_id defaults to HTAP_SYNC_PROJECT_ID)."""
    routes = OperationRoutes(producer, settings.max_body_bytes, settings.max_items)
    targets = targets_schema(settings.max_items)
    for operation in ("pause", "resume", "delete"):
        app.add_api_route(
            f"/v1/operations/{operation}",
            routes.on_tasks(operation),
            methods=["POST"],
            status_code=202,
            operation_id=f"{operation}Tasks",
            summary=_DOCS[operation],
            description="Each task's operation is a ticket (poll it with getReplication)."
            " 202: every one accepted; 207: some; 200: no task to act on; 404: every one names"
            " no task; 409: every one is a conflict (another operation on it in flight); 422:"
            " invalid.",
            dependencies=deps,
            responses={
                200: answer("No task to act on (none created on the instance).", OperationResults),
                202: answer("Every one accepted.", OperationResults, links=TICKET_LINK),
                207: answer("Some accepted.", OperationResults, links=TICKET_LINK),
                404: answer("No ticket named a known task.", OperationResults),
                409: answer("Every one a conflict.", OperationResults),
                422: answer("Invalid (each error names its field).", OperationResults | Errors),
                **common,
                **auth,
            },
            openapi_extra={
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": targets}},
                }
            },
        )
    _add_modify(app, routes, deps, {**common, **auth}, defaulted)


def targets_schema(max_items: int) -> dict[str, Any]:
    """The body of pause, resume and delete: tickets, or an instance with ``all`` true (what
    :class:`OperationTargets` and the handler accept, written out as one of two shapes)."""
    tickets = {
        "type": "array",
        "items": {"type": "string", "pattern": TICKET_PATTERN},
        "minItems": 1,
        "maxItems": max_items,
        "description": "Create tickets (an operation ticket: its task).",
    }
    every = {
        "instance_id": {"type": "string", "pattern": r"^[A-Za-z0-9]{36}$"},
        "project_id": {"type": "string", "pattern": r"^[A-Za-z0-9]{32}$"},
        "all": {"const": True, "description": "Every task created on instance_id."},
    }
    return {
        "oneOf": [
            {
                "type": "object",
                "title": "ByTickets",
                "required": ["tickets"],
                "additionalProperties": False,
                "properties": {"tickets": tickets},
            },
            {
                "type": "object",
                "title": "EveryTaskOfAnInstance",
                "required": ["instance_id", "all"],
                "additionalProperties": False,
                "properties": every,
            },
        ],
        "examples": [{"tickets": ["tk_" + "3f" * 16]}],
    }


def modify_schema(defaulted: bool) -> dict[str, Any]:
    """The body of modify: a creation request carrying at least one selection field."""
    model = NewReplicationDefaulted if defaulted else NewReplication
    schema = inlined(model.model_json_schema())
    schema["anyOf"] = [
        {"required": [name], "properties": {name: {"not": {"type": "null"}}}}
        for name in SELECTION_FIELDS
    ]
    return schema


def _add_modify(
    app: FastAPI,
    routes: OperationRoutes,
    deps: list[Any],
    shared: dict[int | str, dict[str, Any]],
    defaulted: bool,
) -> None:
    """POST /v1/operations/modify."""
    tables = {"repl_type": "include_tables", "repl_scope": "part", "tables": ["orders"]}
    change = {**EXAMPLE, "table_repl_config": tables}
    app.add_api_route(
        "/v1/operations/modify",
        routes.modify,
        methods=["POST"],
        status_code=202,
        operation_id="modifyTask",
        summary="Change a task's configuration: the request's selection becomes its task's.",
        description="PUT .../replication, then done when its job is Completed. The same change"
        " again after it succeeded is a duplicate.",
        dependencies=deps,
        responses={
            202: answer("Accepted.", ModifyAccepted, "Location", links=TICKET_LINK),
            409: answer("Another operation on the task is in flight.", Conflict),
            422: answer("Invalid: each error names its field.", Errors),
            **shared,
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": modify_schema(defaulted), "example": change}
                },
            }
        },
    )
