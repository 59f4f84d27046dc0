"""Commands on created tasks: ``pause``, ``resume``, ``delete`` (by tickets, a bulk results file
or every task created on an instance), ``modify`` (from a request file) and ``undo`` (delete
every task a bulk run created). Each prints one JSON line per task."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NoReturn

import click

from htap_sync.cli.base import (
    EXIT_CONFLICT,
    EXIT_FAILED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    emit_json,
    err,
    fail,
    producer_or_exit,
    settings_or_exit,
    timeout_option,
)
from htap_sync.common.errors import RequestInvalid, TicketConflict, TicketNotFound
from htap_sync.common.models import Operation, TicketState, TicketStatus
from htap_sync.producer.api import Producer
from htap_sync.producer.operations import OperationReceipt, Operations, Target

# An operation ticket that failed this way met a task of another database pair: not ours.
NOT_OURS = "HTAP_SYNC.NAME_TAKEN"


def _targets(
    ops: Operations,
    operation: Operation,
    tickets: tuple[str, ...],
    results: Path | None,
    instance: str | None,
    every: bool,
    project_id: str | None,
) -> list[Target]:
    """What the command applies to, or exit 2 when it was not said exactly once."""
    chosen = [bool(tickets), results is not None, instance is not None]
    if sum(chosen) != 1:
        raise click.UsageError("name TICKETs, or give --results FILE, or --instance ID --all")
    if instance is not None and not every:
        raise click.UsageError("--instance needs --all (every task created on it)")
    if every and instance is None:
        raise click.UsageError("--all needs --instance ID")
    if tickets:
        return ops.of_tickets(operation, tickets)
    if results is not None:
        try:
            return ops.of_results(operation, results)
        except OSError as exc:
            fail(f"--results: cannot read {results}: {exc.strerror}", EXIT_USAGE)
    assert instance is not None  # one of the three, checked above
    return ops.of_instance(operation, instance, project_id)


def line_of(receipt: OperationReceipt, status: TicketStatus | None) -> dict[str, Any]:
    """One JSON line: the receipt, with the operation ticket's state when known."""
    line = receipt.to_json()
    if status is not None:
        line["state"] = status.state.value
        if status.job_id:
            line["job_id"] = status.job_id
        if status.state is TicketState.SUCCEEDED:
            line["already"] = status.reconciled
        if status.error is not None:
            line["error"] = status.error.model_dump(exclude_none=True)
    return line


def run_operation(
    producer: Producer, targets: Iterable[Target], wait_s: float | None
) -> tuple[list[OperationReceipt], dict[str, TicketStatus]]:
    """Queue each target's operation; with ``wait_s``, wait for the accepted ones' tickets."""
    ops = Operations(producer)
    receipts = list(ops.submit_all(targets))
    tickets = [r.ticket for r in receipts if r.accepted and r.ticket]
    if wait_s is None or not tickets:
        return receipts, {t: s for t, s in producer.statuses(tickets).items() if s is not None}
    return receipts, producer.wait(tickets, timeout_s=wait_s)


def exit_code(receipts: list[OperationReceipt], statuses: dict[str, TicketStatus]) -> int:
    """0 when all were accepted (and, waited for, succeeded); else the first problem's code."""
    outcomes = {r.outcome for r in receipts}
    if "invalid" in outcomes:
        return EXIT_USAGE
    if "conflict" in outcomes:
        return EXIT_CONFLICT
    if "not_found" in outcomes:
        return EXIT_NOT_FOUND
    if any(s.state is TicketState.FAILED for s in statuses.values()):
        return EXIT_FAILED
    return EXIT_OK


def _waited_exit(code: int, statuses: dict[str, TicketStatus], waited: bool) -> int:
    if code == EXIT_OK and waited and not all(s.state.terminal for s in statuses.values()):
        return EXIT_TIMEOUT
    return code


def _operation_command(operation: Operation, doc: str) -> click.Command:
    @click.command(name=operation, help=doc)
    @click.argument("tickets", nargs=-1)
    @click.option(
        "--results",
        type=click.Path(path_type=Path, dir_okay=False),
        help="A bulk results file (JSON Lines): every task that run accepted.",
    )
    @click.option("--instance", help="The StarRocks (HTAP) instance, with --all.")
    @click.option("--all", "every", is_flag=True, help="Every task created on --instance.")
    @click.option("--project-id", help="With --instance: default HTAP_SYNC_PROJECT_ID.")
    @click.option("--wait", is_flag=True, help="Wait until the service shows each one done.")
    @timeout_option
    def command(
        tickets: tuple[str, ...],
        results: Path | None,
        instance: str | None,
        every: bool,
        project_id: str | None,
        wait: bool,
        timeout_s: float,
    ) -> None:
        settings = settings_or_exit()
        with producer_or_exit(settings) as producer:
            ops = Operations(producer)
            targets = _targets(ops, operation, tickets, results, instance, every, project_id)
            receipts, statuses = run_operation(producer, targets, timeout_s if wait else None)
        for receipt in receipts:
            emit_json(line_of(receipt, statuses.get(receipt.ticket or "")))
        sys.exit(_waited_exit(exit_code(receipts, statuses), statuses, wait))

    return command


pause = _operation_command(
    "pause", "Pause created tasks (done when the list shows them Paused); a JSON line each."
)
resume = _operation_command(
    "resume",
    "Resume paused tasks (done when the list shows them Full or Incremental); a JSON line each.",
)
delete = _operation_command(
    "delete",
    "Delete created tasks (done when the list no longer shows them); a JSON line each.",
)


@click.command()
@click.argument("request_file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--wait", is_flag=True, help="Wait until each modify's job is Completed.")
@timeout_option
def modify(request_file: Path, wait: bool, timeout_s: float) -> None:
    """Change created tasks' configuration: REQUEST_FILE holds a request (a JSON object, or
    JSON Lines) whose selection becomes its task's; a JSON line each."""
    settings = settings_or_exit()
    requests = _requests_of(request_file)
    with producer_or_exit(settings) as producer:
        ops = Operations(producer)
        targets: list[Target] = []
        for where, data in requests:
            try:
                targets.append(ops.modify_target(data))
            except RequestInvalid as exc:
                targets.append(OperationReceipt(where, "invalid", errors=exc.errors))
        receipts, statuses = run_operation(producer, targets, timeout_s if wait else None)
    for receipt in receipts:
        emit_json(line_of(receipt, statuses.get(receipt.ticket or "")))
    sys.exit(_waited_exit(exit_code(receipts, statuses), statuses, wait))


def _requests_of(path: Path) -> list[tuple[str, Any]]:
    """The requests of a file: one JSON object, or one per line; exit 2 when unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{path}: cannot read: {exc}", EXIT_USAGE)
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        pass
    else:
        if isinstance(whole, list):  # a JSON array of requests
            return [(f"{path.name}[{i}]", item) for i, item in enumerate(whole)]
        return [(path.name, whole)]
    found: list[tuple[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            found.append((f"{path.name}:{number}", json.loads(line)))
        except json.JSONDecodeError as exc:
            fail(f"{path.name}:{number}: not JSON ({exc.msg})", EXIT_USAGE)
    return found


def undo_result(status: TicketStatus | None) -> str:
    """What an undo did to one task: removed, not_there, not_ours, failed or pending."""
    if status is None or not status.state.terminal:
        return "pending"
    if status.state is TicketState.SUCCEEDED:
        return "not_there" if status.reconciled else "removed"
    if status.error is not None and status.error.error_code == NOT_OURS:
        return "not_ours"
    return "failed"


@click.command()
@click.argument("results_file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--wait", is_flag=True, help="Wait until every task is gone from the list.")
@timeout_option
def undo(results_file: Path, wait: bool, timeout_s: float) -> None:
    """Delete every task a bulk run created (RESULTS_FILE: its JSON Lines results), reconciled
    ones included; safe to run again. A JSON line per task, with --wait its result: removed,
    not_there, not_ours (another pair of databases under the name: left alone) or failed."""
    settings = settings_or_exit()
    with producer_or_exit(settings) as producer:
        ops = Operations(producer)
        targets = _targets(ops, "delete", (), results_file, None, False, None)
        receipts, statuses = run_operation(producer, targets, timeout_s if wait else None)
    counts: dict[str, int] = {}
    for receipt in receipts:
        line = line_of(receipt, statuses.get(receipt.ticket or ""))
        if receipt.accepted:
            line["result"] = undo_result(statuses.get(receipt.ticket or ""))
        else:
            line["result"] = receipt.outcome
        counts[line["result"]] = counts.get(line["result"], 0) + 1
        emit_json(line)
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "nothing to undo"
    err.print(f"undo: {summary}", highlight=False)
    code = exit_code(receipts, {t: s for t, s in statuses.items() if undo_result(s) != "not_ours"})
    sys.exit(_waited_exit(code, statuses, wait))


def recreate_tickets(tickets: tuple[str, ...], timeout_s: float) -> NoReturn:
    """``retry --recreate``: for each create ticket whose task failed to sync, delete the
    task, then create it again; one JSON line each (``deleted``, ``outcome`` of the create)."""
    settings = settings_or_exit()
    code = EXIT_OK
    with producer_or_exit(settings) as producer:
        for ticket in tickets:
            line: dict[str, Any] = {"ticket": ticket}
            try:
                deleted, receipt = producer.operations.recreate(ticket, timeout_s=timeout_s)
            except TicketNotFound:
                line["outcome"], code = "not_found", max(code, EXIT_NOT_FOUND)
            except RequestInvalid as exc:
                line.update(outcome="invalid", errors=exc.errors)
                code = max(code, EXIT_USAGE)
            except TicketConflict as exc:
                line.update(outcome="conflict", errors=exc.errors)
                code = max(code, EXIT_CONFLICT)
            else:
                line["delete"] = {"ticket": deleted.ticket, "state": deleted.state.value}
                if deleted.error is not None:
                    line["delete"]["error"] = deleted.error.model_dump(exclude_none=True)
                line["outcome"] = receipt.outcome.value if receipt else "not_recreated"
                if receipt is None:
                    code = max(code, EXIT_FAILED)
            emit_json(line)
    sys.exit(code)
