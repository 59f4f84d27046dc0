"""Operations on created tasks (pause, resume, delete, modify) as tickets: their validation,
their ticket ids, and when each is done (the live service's predicates, taurus-api.md §7-8).

An operation ticket is one per task (``project/instance/task_name``), apart from the task's
create ticket: one operation at a time per task. Another operation submitted while one is in
flight is a conflict; submitted once it ended, it replaces the ended one. A pause, resume or
delete submitted again after it succeeded is queued again: its worker looks first, finds the
predicate holding, and calls nothing (a rerun is a no-op, and stays true to what the list says
now). A modify submitted again with the same change after it succeeded is a duplicate.

=========  ====================================================================================
pause      done when the task's list row shows stage ``Paused``
resume     done when it shows ``Full`` or ``Incremental``
delete     done when the list no longer shows the task (400 ``DBS.05000091``: already deleted)
modify     ``PUT .../replication``, then done when its job is ``Completed`` (``Failed``: failed)
=========  ====================================================================================
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from htap_sync.common.errors import RequestInvalid
from htap_sync.common.models import (
    OPERATIONS,
    Operation,
    OperationRequest,
    _field_error,
    parse_request,
)
from htap_sync.common.tickets.ids import operation_ticket

PAUSED_STAGES = frozenset({"paused"})
RUNNING_STAGES = frozenset({"full", "incremental"})
_IDENTITY = ("project_id", "instance_id", "task_name")


def ticket_of(operation: OperationRequest) -> str:
    """The ticket ``operation`` is recorded under."""
    return operation_ticket(operation.project_id, operation.instance_id, operation.task_name)


def _invalid(field: str, rule: str) -> RequestInvalid:
    return RequestInvalid([{"field": field, "rule": rule, "message": f"{field}: {rule}"}])


def parse_operation(data: Any) -> OperationRequest:
    """Validate an operation (untrusted input: a message, an HTTP body, a file).

    A modify's ``change`` must be a request of the same project, instance and task name
    carrying a selection; other operations take no ``change``.

    Raises:
        RequestInvalid: one error per broken rule, each naming its field.
    """
    if isinstance(data, OperationRequest):
        return data
    if not isinstance(data, Mapping):
        raise _invalid("operation", "must be an object")
    raw = dict(data)
    if raw.get("operation") not in OPERATIONS:
        raise _invalid("operation", "one of " + ", ".join(OPERATIONS))
    change = raw.get("change")
    if raw["operation"] == "modify":
        if change is None:
            raise _invalid("change", "required for modify: the task's new configuration")
        try:
            raw["change"] = parse_request(change)
        except RequestInvalid as exc:
            raise RequestInvalid(
                [
                    {**e, "field": f"change.{e['field']}", "message": f"change.{e['message']}"}
                    for e in exc.errors
                ]
            ) from None
        for name in _IDENTITY:
            if getattr(raw["change"], name) != raw.get(name):
                raise _invalid(f"change.{name}", f"must be the operation's {name}")
        if not raw["change"].configured:
            raise _invalid("change", "must carry a selection (table_repl_config, ...)")
    elif change is not None:
        raise _invalid("change", f"only modify takes a change, not {raw['operation']}")
    try:
        return OperationRequest.model_validate(raw)
    except ValidationError as exc:
        raise RequestInvalid([_field_error(e) for e in exc.errors()]) from None


def modify_of(change: Mapping[str, Any]) -> OperationRequest:
    """The modify of a request file's request (its identity is the change's own)."""
    data = dict(change)
    identity = {name: data.get(name) for name in _IDENTITY}
    return parse_operation({"operation": "modify", **identity, "change": data})


def holds(operation: Operation, stage: str | None) -> bool:
    """Whether the list says ``operation`` is done: ``stage`` is the task's row's stage (any
    case), None when the list does not show the task. A modify is never done by the list."""
    key = (stage or "").lower() if stage is not None else None
    if operation == "delete":
        return key is None
    if operation == "pause":
        return key in PAUSED_STAGES
    if operation == "resume":
        return key in RUNNING_STAGES
    return False


def as_message(operation: OperationRequest) -> dict[str, Any]:
    """The operation as JSON-ready data (what its message and its ticket carry)."""
    data: dict[str, Any] = json.loads(operation.fingerprint())
    return data


def instance_of(operation: OperationRequest) -> str:
    """The operation's instance as the shared list snapshots name it (``project/instance``)."""
    return f"{operation.project_id}/{operation.instance_id}"
