"""The ingress's request and answer models: FastAPI builds ``/openapi.json`` from them.

The routes name these models as their answers (:func:`answer` makes each entry of their
``responses``). Errors, conflicts and health answers are built from them; the hot paths (a
ticket's status, a list's results) send the same shape as plain dicts, and the schemathesis
tests check every answer against the document.

The request body is read and validated by the ingress itself (one item at a time, with the
model's own messages, a list answering per item), so its schema is given to FastAPI as the
route's ``openapi_extra``: :func:`request_body`, made from :class:`NewReplication`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from htap_sync.common.models import ProjectId, ReplicationRequest, TicketState, TicketStatus

TICKET_PATTERN = r"^tk_[0-9a-f]{32}$"
TicketId = Annotated[str, Field(pattern=TICKET_PATTERN, examples=["tk_" + "3f" * 16])]
# An incoming X-Request-Id is echoed (and logged) when it looks like an id, else a new one.
REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:+/=-]{1,128}$"

EXAMPLE: dict[str, Any] = {
    "project_id": "0123456789abcdef0123456789abcdef",
    "instance_id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0in17",
    "source_instance_id": "1a2b3c4d5e6f708192a3b4c5d6e7f809in07",
    "source_database": "orders",
    "target_database": "orders_olap",
    "task_name": "sync_orders",
}
EXAMPLES: dict[str, Any] = {
    "one": {"summary": "One request", "value": EXAMPLE},
    "list": {
        "summary": "A list of requests (one result each)",
        "value": [EXAMPLE, {**EXAMPLE, "source_database": "users", "task_name": "sync_users"}],
    },
}


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Error(_Answer):
    """One broken rule, naming the field (or part) at fault."""

    field: str = Field(description="The field (or part) at fault.", examples=["task_name"])
    rule: str = Field(
        description="The rule it breaks.", examples=["3 to 128 characters of A-Z, a-z, 0-9 and _"]
    )
    message: str = Field(description="'field: rule', for people.")


class Errors(_Answer):
    """Why nothing was done: one error per broken rule."""

    errors: list[Error] = Field(min_length=1)


class Conflict(_Answer):
    """A different request holds this task name and has not failed."""

    ticket: TicketId = Field(description="The ticket holding the task name.")
    state: TicketState
    errors: list[Error] = Field(min_length=1)


class Accepted(TicketStatus):
    """The ticket of an accepted request, and what the submission did."""

    model_config = ConfigDict(title="Accepted")

    outcome: Literal["queued", "duplicate", "redriven"] = Field(
        description="queued: new; duplicate: the same request was already in flight or done"
        " (nothing queued); redriven: a failed ticket was queued again."
    )
    tickets: list[TicketId] = Field(
        min_length=1,
        max_length=1,
        description="[ticket]: every 2xx answer of a POST lists its accepted tickets here.",
    )


class BatchItem(_Answer):
    """The result of one item of a list."""

    index: int = Field(ge=0, description="Position in the list.")
    status: Literal["queued", "duplicate", "redriven", "conflict", "invalid"] = Field(
        description="queued, duplicate and redriven are accepted; conflict and invalid were"
        " not queued."
    )
    ticket: TicketId | None = Field(
        description="The item's ticket (for a conflict, the holder's); null when invalid."
    )
    errors: list[Error]


class BatchResult(_Answer):
    """One result per item of a list, in the order sent."""

    results: list[BatchItem] = Field(min_length=1)
    tickets: list[TicketId] = Field(
        description="The tickets of the accepted items, in order (empty when none was)."
    )
    accepted: int = Field(ge=0)
    rejected: int = Field(ge=0)


class Health(_Answer):
    """Whether the ingress reaches Redis."""

    ok: bool
    redis: Literal["ok", "unreachable"]


class NewReplication(ReplicationRequest):
    """One creation request, as the API takes it plus where it runs."""

    model_config = ConfigDict(title="NewReplication", json_schema_extra={"examples": [EXAMPLE]})


class NewReplicationDefaulted(NewReplication):
    """One creation request; project_id defaults to the ingress's HTAP_SYNC_PROJECT_ID."""

    model_config = ConfigDict(title="NewReplication")

    project_id: ProjectId | None = Field(  # type: ignore[assignment]
        default=None, description="Defaults to the ingress's HTAP_SYNC_PROJECT_ID."
    )


def request_body(*, max_items: int, project_defaulted: bool) -> dict[str, Any]:
    """The POST's ``requestBody``: one :class:`NewReplication` or a list of 1..max_items."""
    model = NewReplicationDefaulted if project_defaulted else NewReplication
    one = inlined(model.model_json_schema())
    many = {"type": "array", "items": one, "minItems": 1, "maxItems": max_items}
    return {
        "required": True,
        "content": {
            "application/json": {"schema": {"oneOf": [one, many]}, "examples": EXAMPLES},
        },
    }


def inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its ``$defs`` (the selection's nested models) written in place of each
    ``$ref`` to them: the request body is inline in the document, where ``#/$defs`` means
    nothing. The nested models do not refer to themselves, so this ends."""
    defs: dict[str, Any] = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {key: walk(value) for key, value in node.items() if key != "$defs"}
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    result: dict[str, Any] = walk(schema)
    return result


_HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-Id": {
        "description": "The caller's own X-Request-Id when it sent one that looks like an id"
        " (1 to 128 of A-Z a-z 0-9 . _ : + / = -), else a new one; quote it when reporting.",
        "required": True,
        "schema": {"type": "string", "pattern": REQUEST_ID_PATTERN},
    },
    "WWW-Authenticate": {"required": True, "schema": {"type": "string"}},
    "Location": {
        "description": "Where to poll the ticket (one object only).",
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
}
# Every 2xx answer of a POST lists its accepted tickets (at least one): the link holds for both
# the single and the list form, which has no top-level ``ticket``.
TICKET_LINK = {
    "GetTicket": {
        "operationId": "getReplication",
        "parameters": {"ticket": "$response.body#/tickets/0"},
        "description": "The status of the (first) accepted ticket.",
    }
}


def answer(description: str, model: Any = None, *headers: str, **extra: Any) -> dict[str, Any]:
    """One entry of a route's ``responses``: its model, the headers it carries, links."""
    entry: dict[str, Any] = {
        "description": description,
        "headers": {name: _HEADERS[name] for name in ("X-Request-Id", *headers)},
        **extra,
    }
    if model is not None:
        entry["model"] = model
    return entry
