"""The creation request, validated against the API's documented rules, and the ticket status."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    computed_field,
)

from htap_sync.common.errors import RequestInvalid
from htap_sync.common.sync_info import SyncInfo
from htap_sync.common.tickets.ids import ticket_id

# The documented rules (taurus-api.md section 1), as text users read in error messages.
RULES: dict[str, str] = {
    "project_id": "32 letters or digits",
    "instance_id": "36 letters or digits",
    "source_instance_id": "36 letters or digits",
    "source_node_id": "36 letters or digits, or absent for the primary node",
    "source_database": "3 to 1024 characters of A-Z, a-z, 0-9 and _",
    "target_database": "3 to 128 characters of A-Z, a-z, 0-9 and _",
    "task_name": "3 to 128 characters of A-Z, a-z, 0-9 and _",
    # The optional selection of a configured creation (taurus-api.md section 8).
    "table_repl_config": "an object of repl_type, repl_scope and tables",
    "tables_configs": "a list of objects of table_name and table_config",
    "db_configs": "a list of objects of param_name and value",
    "is_instance_level_sync": '"true" or "false"',
    "database_repl_scope": '"all" or "part"',
    # Where the ticket waits and whose share of the rate it takes (never sent to the API).
    "lane": '"interactive" or "bulk"',
    "tenant": "1 to 64 characters of A-Z, a-z, 0-9, _, ., : and -",
}
# Fields of a submission that route it (lane) and share the rate fairly (tenant): neither is
# sent to the API nor part of the request's identity (its fingerprint).
ROUTING_FIELDS = ("lane", "tenant")

# The rules inside the selection, by dotted path (list indices left out).
NESTED_RULES: dict[str, str] = {
    "table_repl_config.repl_type": '"include_tables" or "exclude_tables"',
    "table_repl_config.repl_scope": '"all" or "part"',
    "table_repl_config.tables": "1 to 64 characters of A-Z, a-z, 0-9, _ and $",
    "tables_configs.table_name": "1 to 64 characters of A-Z, a-z, 0-9, _ and $",
    "tables_configs.table_config": "1 to 4096 characters",
    "db_configs.param_name": "1 to 128 characters of A-Z, a-z, 0-9 and _",
    "db_configs.value": "1 to 1024 characters",
}

ProjectId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{32}$")]
InstanceId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{36}$")]
_NAME = r"^[A-Za-z0-9_]+$"
SourceDatabase = Annotated[str, StringConstraints(min_length=3, max_length=1024, pattern=_NAME)]
ShortName = Annotated[str, StringConstraints(min_length=3, max_length=128, pattern=_NAME)]
# MySQL's unquoted identifiers, less the characters the HTAP side refuses (non-ASCII).
TableName = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_$]+$")
]
ParamName = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=_NAME)]
# The live-tested value "0" is one character: the spec's minLength 2 is not enforced.
ParamValue = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
TableConfigText = Annotated[str, StringConstraints(min_length=1, max_length=4096)]

# The body the API takes; project_id and instance_id travel in the path.
BODY_FIELDS = (
    "source_instance_id",
    "source_node_id",
    "source_database",
    "target_database",
    "task_name",
)


class TableReplConfig(BaseModel):
    """Which tables a configured task syncs: all of them, or those listed in or out."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    repl_type: Literal["include_tables", "exclude_tables"]
    repl_scope: Literal["all", "part"]
    tables: list[TableName] = []


class TablesConfig(BaseModel):
    """One table's StarRocks configuration (``"order by tenant_name;key columns tenant_name"``)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    table_name: TableName
    table_config: TableConfigText


class DbConfig(BaseModel):
    """One replication parameter of the database (names: ``database-parameters``)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    param_name: ParamName
    value: ParamValue


def _absent(value: object) -> bool:
    return value is None


def _selection() -> Any:
    # Left out of every dump when absent, so a plain request serialises as it always did.
    return Field(default=None, exclude_if=_absent)


SELECTION_FIELDS = (
    "table_repl_config",
    "tables_configs",
    "db_configs",
    "is_instance_level_sync",
    "database_repl_scope",
)


class ReplicationRequest(BaseModel):
    """One data-synchronization task to create: where it runs and what it copies.

    Strict: unknown fields are refused and nothing is coerced (``123`` is not a task name).
    Build it with :func:`parse_request` to get :class:`RequestInvalid` with readable errors.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    project_id: ProjectId
    instance_id: InstanceId
    source_instance_id: InstanceId
    source_node_id: InstanceId | None = None
    source_database: SourceDatabase
    target_database: ShortName
    task_name: ShortName
    # The selection: a request carrying any of it is a configured creation (section 8).
    table_repl_config: TableReplConfig | None = _selection()
    tables_configs: list[TablesConfig] | None = _selection()
    db_configs: list[DbConfig] | None = _selection()
    is_instance_level_sync: Literal["true", "false"] | None = _selection()
    database_repl_scope: Literal["all", "part"] | None = _selection()
    # Routing, not identity: see ROUTING_FIELDS and common/lanes.py.
    lane: Literal["interactive", "bulk"] | None = Field(
        default=None,
        exclude_if=_absent,
        description="interactive (served first) or bulk; defaults to interactive for one"
        " request, bulk for a list or a file.",
    )
    tenant: (
        Annotated[
            str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
        ]
        | None
    ) = Field(
        default=None,
        exclude_if=_absent,
        description="Whose fair share of the bulk lane's rate this ticket takes (defaults to"
        " the project); never sent to the API.",
    )

    @property
    def configured(self) -> bool:
        """True when the request carries a selection (created in two phases, not one call)."""
        return any(getattr(self, name) is not None for name in SELECTION_FIELDS)

    def selection(self) -> dict[str, Any]:
        """The selection fields that are set, as the configuration calls take them."""
        return self.model_dump(include=set(SELECTION_FIELDS), exclude_none=True)

    def body(self) -> dict[str, str]:
        """The JSON body of the create call (absent optional fields left out)."""
        data = self.model_dump(include=set(BODY_FIELDS), exclude_none=True)
        return {k: str(v) for k, v in data.items()}

    @cached_property
    def ticket(self) -> str:
        """This request's ticket id (from its project, instance and task name), computed once
        and passed down with the request."""
        return ticket_id(self.project_id, self.instance_id, self.task_name)

    def fingerprint(self) -> str:
        """A canonical JSON text of the whole request: equal requests, equal fingerprints.

        The selection is part of it, so another selection under the same task name (the same
        ticket id) is a different request: a conflict, not a duplicate.
        """
        data = self.model_dump(exclude_none=True, exclude=set(ROUTING_FIELDS))
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    def route(self) -> str:
        """The lane and tenant as the ticket store keeps them beside the fingerprint (JSON
        text; "" for none)."""
        data = self.model_dump(include=set(ROUTING_FIELDS), exclude_none=True)
        return json.dumps(data, separators=(",", ":")) if data else ""

    def routed(self, lane: str | None = None, tenant: str | None = None) -> ReplicationRequest:
        """This request with a lane and a tenant where it has none (its own stay); both
        checked first by :func:`check_routing`."""
        update = {
            name: value
            for name, value in (("lane", lane), ("tenant", tenant))
            if value is not None and getattr(self, name) is None
        }
        return self.model_copy(update=update) if update else self


def _field_name(loc: Sequence[Any]) -> str:
    """``tables_configs[0].table_name``: names joined by dots, list indices in brackets."""
    field = ""
    for part in loc:
        field += f"[{part}]" if isinstance(part, int) else f".{part}" if field else str(part)
    return field


_TYPE_RULES = {
    "string_type": "must be a string",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "list_type": "must be a list",
}


def _field_error(err: Mapping[str, Any]) -> dict[str, str]:
    loc = err.get("loc") or ()
    field = _field_name(loc) if loc else "request"
    field = field or '""'  # an unknown field with an empty name still needs a visible name
    top = str(loc[0]) if loc else "request"
    path = ".".join(str(part) for part in loc if not isinstance(part, int))
    kind = err.get("type", "")
    if kind == "missing":
        rule = "required"
    elif kind == "extra_forbidden":
        rule = "unknown field"
    elif kind in _TYPE_RULES:
        rule = _TYPE_RULES[kind]
    else:
        rule = NESTED_RULES.get(path) or RULES.get(top, str(err.get("msg", "invalid")))
    return {"field": field, "rule": rule, "message": f"{field}: {rule}"}


def parse_request(data: Any) -> ReplicationRequest:
    """Validate untrusted input (a mapping from a file, an HTTP body or a message).

    Raises:
        RequestInvalid: one error per broken rule, each naming its field; never the value.
    """
    if isinstance(data, ReplicationRequest):
        return data
    if not isinstance(data, Mapping):
        raise RequestInvalid(
            [
                {
                    "field": "request",
                    "rule": "must be an object",
                    "message": "request: must be an object",
                }
            ]
        )
    try:
        return ReplicationRequest.model_validate(dict(data))
    except ValidationError as exc:
        raise RequestInvalid([_field_error(e) for e in exc.errors()]) from None


Operation = Literal["pause", "resume", "delete", "modify"]
OPERATIONS: tuple[Operation, ...] = ("pause", "resume", "delete", "modify")


class OperationRequest(BaseModel):
    """An operation on a created task (taurus-api.md section 8), queued as a ticket of its own.

    ``change`` (modify only) is the task's new configuration: a request of the same project,
    instance and task name carrying a selection. Build it with
    :func:`htap_sync.common.operations.parse_operation` for readable errors.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    operation: Operation
    project_id: ProjectId
    instance_id: InstanceId
    task_name: ShortName
    # The databases of the task this tool created under the name (when known): a task of
    # another pair under the same name is someone else's, and is left alone.
    source_database: SourceDatabase | None = _selection()
    target_database: ShortName | None = _selection()
    change: ReplicationRequest | None = _selection()

    @property
    def lane(self) -> Literal["interactive", "bulk"]:
        """An operation is a user's command, waited for: the interactive lane."""
        return "interactive"

    @property
    def tenant(self) -> str | None:
        """Operations take no tenant's share (they go in the interactive lane)."""
        return None

    def fingerprint(self) -> str:
        """A canonical JSON text of the whole operation (as ``ReplicationRequest``'s)."""
        return json.dumps(self.model_dump(exclude_none=True), sort_keys=True, separators=(",", ":"))


# What a caller waits for: the ticket's end ("created"), or its task's end ("synced").
Until = Literal["created", "synced"]


class TicketState(StrEnum):
    """Where a ticket is: ``queued -> running -> retrying -> succeeded | failed``."""

    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        """True once nothing more will happen to the ticket."""
        return self in (TicketState.SUCCEEDED, TicketState.FAILED)


class ErrorPayload(BaseModel):
    """Why a ticket failed or is retrying, as the API (or the transport) said it."""

    model_config = ConfigDict(extra="forbid")

    http_status: int | None = None
    error_code: str | None = None
    error_msg: str
    request_id: str | None = None


class Attempt(BaseModel):
    """One call a worker made for a ticket, as kept in its bounded history."""

    model_config = ConfigDict(extra="forbid")

    at: datetime
    call: Literal[
        "create",
        "list",
        "jobs",
        "configuration",
        "configure",
        "delete",
        "pause",
        "resume",
        "modify",
    ]
    outcome: Literal["created", "error", "found", "absent", "sent", "holds"]
    http_status: int | None = None
    error_code: str | None = None
    request_id: str | None = None


class TicketStatus(BaseModel):
    """What a caller sees when it polls a ticket."""

    model_config = ConfigDict(extra="forbid")

    ticket: str
    state: TicketState
    job_id: str | None = None
    error: ErrorPayload | None = None
    attempts: int = Field(default=0, ge=0)
    reconciled: bool = Field(
        default=False,
        description="True when the task was found to exist already after an ambiguous attempt.",
    )
    job_id_reason: str | None = Field(
        default=None, description="Why job_id is null on a succeeded ticket (reconciled)."
    )
    found: dict[str, Any] | None = Field(
        default=None, description="The list row a reconciled ticket's task was found with."
    )
    sync: SyncInfo | None = Field(
        default=None, description="Where the created task stands; None until it is followed."
    )
    request: ReplicationRequest | OperationRequest
    history: list[Attempt] = Field(
        default_factory=list, description="The last calls made for this ticket, oldest first."
    )
    created_at: datetime
    updated_at: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def task_ref(self) -> str:
        """The task's identity on the service: ``<instance_id>/<task_name>``."""
        return f"{self.request.instance_id}/{self.request.task_name}"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def project_id(self) -> str:
        """The project the task lives in (with :attr:`task_ref`, the task's full identity)."""
        return self.request.project_id

    @property
    def synced(self) -> bool:
        """True when the ticket succeeded and its task was seen syncing."""
        return self.state is TicketState.SUCCEEDED and bool(
            self.sync and self.sync.state == "syncing"
        )

    def done(self, until: Until = "created") -> bool:
        """Whether a caller waiting ``until`` a milestone has its answer for this ticket.

        ``created``: the ticket finished. ``synced``: it failed, or it succeeded and the fleet
        stopped following its task (syncing, failed to sync, or unknown past the deadline).
        """
        if until == "created" or self.state is TicketState.FAILED:
            return self.state.terminal
        if isinstance(self.request, OperationRequest):  # no task to follow: its end is all
            return self.state.terminal
        return self.state is TicketState.SUCCEEDED and bool(self.sync and self.sync.state.final)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready mapping (timestamps as ISO 8601, UTC)."""
        return self.model_dump(mode="json")
