"""The Python API of the operations on created tasks: pause, resume, delete and modify, each
queued as a ticket (:mod:`htap_sync.common.operations`), and the tasks they apply to (tickets,
a bulk results file, every task this deployment created on an instance).

Example:
    >>> ops = producer.operations  # or Operations(producer)
    >>> receipts = ops.pause([create_ticket])
    >>> producer.wait([r.ticket for r in receipts if r.accepted], timeout_s=600)
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from htap_sync.common.errors import RequestInvalid, TicketConflict, TicketNotFound
from htap_sync.common.models import (
    Operation,
    OperationRequest,
    ReplicationRequest,
    TicketState,
    TicketStatus,
)
from htap_sync.common.operations import as_message, modify_of, parse_operation, ticket_of
from htap_sync.common.sync_info import SyncState
from htap_sync.common.tickets.ids import is_ticket_id, ticket_id
from htap_sync.producer.api import Producer, Receipt

_ACCEPTED = ("queued", "duplicate", "redriven")  # a results line's outcome, accepted
Outcome = Literal["queued", "duplicate", "redriven", "conflict", "not_found", "invalid"]


@dataclass(frozen=True)
class OperationReceipt:
    """What became of one operation submitted.

    Attributes:
        target: what it was asked for: a create ticket, a results file's line, a task ref.
        outcome: ``queued``, ``duplicate``, ``redriven`` (accepted); ``conflict`` (another
            operation on the task is in flight), ``not_found``, ``invalid`` (not queued).
        ticket: the operation's ticket (None when not queued for want of a task).
        operation: the validated operation (None when not found or invalid).
        errors: what is wrong, field by field.
    """

    target: str
    outcome: Outcome
    ticket: str | None = None
    operation: OperationRequest | None = None
    errors: list[dict[str, str]] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        """True when the operation is (or already was) queued."""
        return self.outcome in ("queued", "duplicate", "redriven")

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready line (the CLI prints one per task)."""
        line: dict[str, Any] = {"target": self.target, "outcome": self.outcome}
        if self.ticket:
            line["ticket"] = self.ticket
        if self.operation is not None:
            op = self.operation
            line["operation"] = op.operation
            line["task_ref"] = f"{op.instance_id}/{op.task_name}"
        if self.errors:
            line["errors"] = self.errors
        return line


@dataclass(frozen=True)
class Planned:
    """An operation to submit, and what it was asked for (a create ticket, a file's line)."""

    target: str
    operation: OperationRequest


# What an operation applies to: an operation (planned for a target, or alone: its task), or
# why there is none (a receipt: target, outcome, errors).
Target = Planned | OperationRequest | OperationReceipt


def _problem(target: str, outcome: Outcome, field_name: str, rule: str) -> OperationReceipt:
    errors = [{"field": field_name, "rule": rule, "message": f"{field_name}: {rule}"}]
    return OperationReceipt(target, outcome, errors=errors)


def of_request(operation: Operation, request: ReplicationRequest) -> OperationRequest:
    """``operation`` on the task ``request`` created (its databases: never another's task)."""
    return parse_operation(
        {
            "operation": operation,
            "project_id": request.project_id,
            "instance_id": request.instance_id,
            "task_name": request.task_name,
            "source_database": request.source_database,
            "target_database": request.target_database,
        }
    )


class Operations:
    """Queues operations on created tasks through a :class:`Producer`'s Redis and Celery.

    Every operation goes through the create path's queue, rate limit, breaker and retries;
    its ticket ends ``succeeded`` when the service shows it done (see
    :mod:`htap_sync.common.operations`), so :meth:`Producer.wait` waits for it.
    """

    def __init__(self, producer: Producer) -> None:
        self.producer = producer

    def submit(self, operation: OperationRequest | Mapping[str, Any]) -> OperationReceipt:
        """Validate and queue one operation (its ticket and message in one step).

        Raises:
            RequestInvalid: the operation breaks a rule, naming the field.
            TicketConflict: another operation on the task is in flight.
            redis.RedisError: Redis is unreachable; nothing was queued.
        """
        op = parse_operation(operation)
        ticket, outcome, state = self._record(op)
        if outcome == "conflict":
            raise TicketConflict(ticket, state)
        return OperationReceipt(f"{op.instance_id}/{op.task_name}", outcome, ticket, op)

    def submit_all(self, targets: Iterable[Target]) -> Iterator[OperationReceipt]:
        """Queue each operation (a receipt passes through); conflicts come back as receipts."""
        for target in targets:
            if isinstance(target, OperationReceipt):
                yield target
                continue
            if isinstance(target, OperationRequest):
                target = Planned(f"{target.instance_id}/{target.task_name}", target)
            op = target.operation
            ticket, outcome, state = self._record(op)
            if outcome == "conflict":
                rule = f"another operation on this task is {state}"
                yield OperationReceipt(
                    target.target,
                    "conflict",
                    ticket,
                    op,
                    [{"field": "task_name", "rule": rule, "message": f"task_name: {rule}"}],
                )
            else:
                yield OperationReceipt(target.target, outcome, ticket, op)

    def _record(self, op: OperationRequest) -> tuple[str, Any, str]:
        """Record and queue one operation: ``(ticket, outcome, state)``."""
        producer = self.producer
        run = uuid.uuid4().hex
        message = producer.message(ticket_of(op), run, as_message(op))
        return producer.store.submit_operation(
            op, run=run, queue_key=producer.queue_key, message=message
        )

    def pause(self, tickets: Iterable[str]) -> list[OperationReceipt]:
        """Queue a pause of the task of each create ticket (one receipt each, in order)."""
        return list(self.submit_all(self.of_tickets("pause", tickets)))

    def resume(self, tickets: Iterable[str]) -> list[OperationReceipt]:
        """Queue a resume of the task of each create ticket (one receipt each, in order)."""
        return list(self.submit_all(self.of_tickets("resume", tickets)))

    def delete(self, tickets: Iterable[str]) -> list[OperationReceipt]:
        """Queue a delete of the task of each create ticket (one receipt each, in order)."""
        return list(self.submit_all(self.of_tickets("delete", tickets)))

    def undo(self, results: Path) -> list[OperationReceipt]:
        """Queue a delete of every task a bulk run's results file accepted (see
        :meth:`of_results`); safe to call again (a task gone is found gone, nothing sent).

        Raises:
            OSError: the file cannot be read.
        """
        return list(self.submit_all(self.of_results("delete", results)))

    def recreate(self, ticket: str, *, timeout_s: float) -> tuple[TicketStatus, Receipt | None]:
        """Re-drive a create whose task failed to sync: delete the failed task (an operation
        ticket, waited for up to ``timeout_s``), then submit the create again. Never automatic:
        the user asks for it (``htap-sync retry --recreate``).

        Returns:
            the delete's last status, and the create's receipt (None when the delete did not
            succeed in time: nothing was re-created).

        Raises:
            TicketNotFound: unknown ticket, or its result expired.
            RequestInvalid: ``ticket`` is not a create whose task failed to sync (``ticket``).
            TicketConflict: another operation on the task is in flight.
        """
        producer = self.producer
        status = producer.store.get(ticket)
        request = status.request
        failed_sync = status.sync is not None and status.sync.state is SyncState.FAILED
        if not isinstance(request, ReplicationRequest) or not failed_sync:
            sync = status.sync.state.value if status.sync else "none"
            rule = f"not a created task that failed to sync (state {status.state}, sync {sync})"
            raise RequestInvalid([{"field": "ticket", "rule": rule, "message": f"ticket: {rule}"}])
        deleting = self.submit(of_request("delete", request))
        op_ticket = str(deleting.ticket)
        deleted = producer.wait([op_ticket], timeout_s=timeout_s)[op_ticket]
        if deleted.state is not TicketState.SUCCEEDED:
            return deleted, None
        why = f"its task failed to sync; deleted by {op_ticket} to be created again"
        if not producer.store.make_recreatable(ticket, why):
            return deleted, None  # re-driven meanwhile by someone else: leave it to them
        return deleted, producer.enqueue(request)

    # -- what an operation applies to ------------------------------------------------------------

    def of_tickets(self, operation: Operation, tickets: Iterable[str]) -> list[Target]:
        """``operation`` on the task of each create ticket (an operation ticket: its task)."""
        wanted = list(dict.fromkeys(tickets))
        found = self.producer.statuses(wanted)
        targets: list[Target] = []
        for ticket in wanted:
            status = found.get(ticket)
            if not is_ticket_id(ticket):
                targets.append(_problem(ticket, "invalid", "ticket", "tk_ and 32 hex digits"))
            elif status is None:
                targets.append(_problem(ticket, "not_found", "ticket", "unknown or expired"))
            elif isinstance(status.request, OperationRequest):
                data = status.request.model_dump(exclude_none=True, exclude={"change"})
                planned = parse_operation({**data, "operation": operation})
                targets.append(Planned(ticket, planned))
            else:
                targets.append(Planned(ticket, of_request(operation, status.request)))
        return targets

    def of_results(self, operation: Operation, path: Path) -> list[Target]:
        """``operation`` on every task a bulk run's results file (JSON Lines) accepted: each
        line whose outcome is queued, duplicate (the same request, submitted before) or
        redriven, with the request it recorded (read from the line, else its ticket). A
        conflict's line names another request's ticket: it is left out, as invalid lines are.

        Raises:
            OSError: the file cannot be read.
        """
        targets: list[Target] = []
        lookups: list[str] = []
        for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not text.strip():
                continue
            where = f"{path.name}:{number}"
            try:
                line = json.loads(text)
            except json.JSONDecodeError:
                targets.append(_problem(where, "invalid", "line", "not JSON"))
                continue
            accepted = isinstance(line, dict) and line.get("outcome") in _ACCEPTED
            if not accepted or not isinstance(line.get("ticket"), str):
                # Never accepted (invalid; a conflict's ticket is another request's): the run
                # created nothing for it.
                continue
            request = line.get("request")
            try:
                created = ReplicationRequest.model_validate(request)
            except ValueError:
                lookups.append(line["ticket"])
                continue
            targets.append(Planned(line["ticket"], of_request(operation, created)))
        return targets + self.of_tickets(operation, lookups)

    def of_instance(
        self, operation: Operation, instance_id: str, project_id: str | None = None
    ) -> list[Target]:
        """``operation`` on every task this deployment created on an instance (its create
        tickets that succeeded and have not expired), in task-name order."""
        project = project_id or self.producer.settings.cloud.project_id
        store = self.producer.store
        created: list[ReplicationRequest] = []
        batch: list[str] = []

        def flush() -> None:
            found = store.get_many(batch)
            for status in found.values():
                if status is None or status.state is not TicketState.SUCCEEDED:
                    continue
                request = status.request
                if not isinstance(request, ReplicationRequest):
                    continue
                if request.instance_id == instance_id and project in (None, request.project_id):
                    created.append(request)
            batch.clear()

        for key in store.redis.scan_iter(match=store.keys.ticket("*"), count=1000):
            batch.append(str(key).rsplit(":", 1)[-1])
            if len(batch) >= 500:
                flush()
        flush()
        created.sort(key=lambda r: (r.project_id, r.task_name))
        return [
            Planned(ticket_id(r.project_id, r.instance_id, r.task_name), of_request(operation, r))
            for r in created
        ]

    def modify(self, request: ReplicationRequest | Mapping[str, Any]) -> OperationReceipt:
        """Queue a modify of the task ``request`` names: its selection becomes the task's.

        Raises:
            RequestInvalid: the request breaks a rule, or carries no selection.
            TicketConflict: another operation on the task is in flight.
        """
        return self.submit(self.modify_target(request))

    def modify_target(self, request: ReplicationRequest | Mapping[str, Any]) -> OperationRequest:
        """The modify of the task ``request`` names (``project_id`` from the settings when
        absent).

        Raises:
            RequestInvalid: the request breaks a rule, or carries no selection.
        """
        if isinstance(request, ReplicationRequest):
            data = request.model_dump(exclude_none=True)
        elif isinstance(request, Mapping):
            data = dict(request)
        else:
            rule = {"field": "request", "rule": "must be an object", "message": ""}
            raise RequestInvalid([{**rule, "message": "request: must be an object"}])
        if data.get("project_id") is None and self.producer.settings.cloud.project_id:
            data["project_id"] = self.producer.settings.cloud.project_id
        return modify_of(data)


def not_found(target: str) -> OperationReceipt:
    """The receipt of a target that names no task."""
    return _problem(target, "not_found", "ticket", "unknown or expired")


__all__ = [
    "OperationReceipt",
    "Operations",
    "RequestInvalid",
    "TicketNotFound",
    "not_found",
    "of_request",
]
