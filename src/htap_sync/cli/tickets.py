"""Commands on tickets: enqueue one, look up, wait, list failed ones, re-drive, inspect."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from htap_sync.cli.base import (
    EXIT_CONFLICT,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_USAGE,
    Seconds,
    describe,
    emit_json,
    err,
    fail,
    lane_option,
    producer_or_exit,
    settings_or_exit,
    tenant_option,
    timeout_option,
    until_option,
    wait_exit,
)
from htap_sync.cli.operations import recreate_tickets
from htap_sync.common.errors import RequestInvalid, TicketConflict, TicketNotFound
from htap_sync.common.lanes import Lane
from htap_sync.common.models import SELECTION_FIELDS, Until
from htap_sync.worker.fleet import fleet_view


@click.command()
@click.option("--project-id", help="32 letters/digits; default HTAP_SYNC_PROJECT_ID.")
@click.option("--instance-id", required=True, help="The StarRocks (HTAP) instance.")
@click.option("--source-instance-id", required=True, help="The TaurusDB source instance.")
@click.option("--source-node-id", help="A read-replica node; omitted means the primary.")
@click.option("--source-database", required=True)
@click.option("--target-database", required=True)
@click.option("--task-name", required=True)
@click.option(
    "--selection-json",
    "selection",
    metavar="JSON|@FILE",
    help="The selection of a configured task, as a JSON object (or @ a file holding one):"
    " table_repl_config, tables_configs, db_configs, is_instance_level_sync,"
    " database_repl_scope.",
)
@lane_option("interactive")
@tenant_option
@click.option("--json", "as_json", is_flag=True, help="Print the ticket as JSON.")
def enqueue(
    as_json: bool, selection: str | None, lane: Lane, tenant: str | None, **fields: str | None
) -> None:
    """Validate one creation request and queue it; prints its ticket."""
    settings = settings_or_exit()
    request: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}
    if selection is not None:
        request.update(_selection(selection))
    with producer_or_exit(settings) as producer:
        try:
            receipt = producer.enqueue(request, lane=lane, tenant=tenant)
        except RequestInvalid as exc:
            if as_json:
                emit_json({"state": "invalid", "errors": exc.errors})
            fail(f"invalid request: {exc}", EXIT_USAGE)
        except TicketConflict as exc:
            if as_json:
                emit_json({"state": "conflict", "ticket": exc.ticket, "errors": exc.errors})
            fail(str(exc), EXIT_CONFLICT)
        status = producer.status(receipt.ticket)
    if as_json:
        emit_json({"outcome": receipt.outcome.value, **status.to_json()})
    else:
        click.echo(f"{receipt.ticket} {receipt.outcome.value}")


def _selection(text: str) -> dict[str, Any]:
    """``--selection-json``'s object (read from a file after ``@``), or exit 2 saying why."""
    where = "--selection-json"
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            fail(f"{where}: cannot read {text[1:]}: {exc.strerror}", EXIT_USAGE)
    try:
        found = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"{where}: not valid JSON ({exc.msg})", EXIT_USAGE)
    if not isinstance(found, dict):
        fail(f"{where}: must be a JSON object", EXIT_USAGE)
    if unknown := sorted(set(found) - set(SELECTION_FIELDS)):
        fail(f"{where}: unknown field(s) {', '.join(unknown)}", EXIT_USAGE)
    return found


@click.command()
@click.argument("tickets", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option(
    "--timeout-s",
    default=10.0,
    show_default=True,
    type=Seconds(),
    help="How long an unreachable Redis is retried (with backoff) before exit 69.",
)
def status(tickets: tuple[str, ...], as_json: bool, timeout_s: float) -> None:
    """Show tickets' states, job ids and errors."""
    settings = settings_or_exit()
    code = EXIT_OK
    with producer_or_exit(settings) as producer:
        for ticket, found in producer.statuses(tickets, ride_out_s=timeout_s).items():
            if found is None:
                code = EXIT_NOT_FOUND
                if as_json:
                    emit_json({"ticket": ticket, "state": "not_found"})
                else:
                    click.echo(f"{ticket}  not found")
            elif as_json:
                emit_json(found.to_json())
            else:
                click.echo(describe(found))
    sys.exit(code)


@click.command()
@click.argument("tickets", nargs=-1, required=True)
@timeout_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@until_option
def wait(tickets: tuple[str, ...], timeout_s: float, as_json: bool, until: Until) -> None:
    """Wait until tickets finish (or their tasks sync); exit 0 only if all got there."""
    settings = settings_or_exit()
    with producer_or_exit(settings) as producer:
        try:
            statuses = producer.wait(tickets, timeout_s=timeout_s, until=until)
        except TicketNotFound as exc:
            fail(str(exc), EXIT_NOT_FOUND)
    for found in statuses.values():
        emit_json(found.to_json()) if as_json else click.echo(describe(found))
    sys.exit(wait_exit(statuses, until))


@click.command()
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def failed(limit: int, as_json: bool) -> None:
    """List failed tickets (most recent first) with their last error."""
    settings = settings_or_exit()
    with producer_or_exit(settings) as producer:
        tickets = producer.failed(limit=limit)
    for found in tickets:
        if as_json:
            emit_json(found.to_json())
        else:
            click.echo(f"{describe(found)}  task={found.request.task_name}")
    if not as_json:
        err.print(f"{len(tickets)} failed", highlight=False)


@click.command()
@click.argument("tickets", nargs=-1)
@click.option("--all-failed", is_flag=True, help="Re-drive every failed ticket.")
@click.option(
    "--recreate",
    is_flag=True,
    help="For created tasks that failed to sync: delete each failed task, then create it again.",
)
@timeout_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def retry(
    tickets: tuple[str, ...], all_failed: bool, recreate: bool, timeout_s: float, as_json: bool
) -> None:
    """Send failed tickets again (their recorded requests); in-flight ones are left alone."""
    if bool(tickets) == all_failed:
        raise click.UsageError("name TICKETs or give --all-failed (not both)")
    if recreate:
        if all_failed:
            raise click.UsageError("--recreate takes TICKETs, not --all-failed")
        recreate_tickets(tickets, timeout_s)
    settings = settings_or_exit()
    code = EXIT_OK
    with producer_or_exit(settings) as producer:
        chosen = [t.ticket for t in producer.failed()] if all_failed else list(tickets)
        for ticket in chosen:
            try:
                receipt = producer.retry(ticket)
            except TicketNotFound:
                code = EXIT_NOT_FOUND
                row: dict[str, str] = {"ticket": ticket, "outcome": "not_found"}
            else:
                row = {"ticket": ticket, "outcome": receipt.outcome.value}
            if as_json:
                emit_json(row)
            else:
                click.echo(f"{row['ticket']}  {row['outcome']}")
    sys.exit(code)


def _echo_lanes(view: dict[str, Any]) -> None:
    """The lanes' queues, the bulk tenants' waiting messages and each lane's share."""
    lanes = view["lanes"]
    if not lanes["enabled"]:
        click.echo("lanes: off (one queue, first come first served)")
        return
    q = lanes["queues"]
    waiting = ", ".join(f"{t} {n}" for t, n in lanes["tenants_waiting"].items()) or "none"
    click.echo(f"lanes: interactive {q['interactive']} queued, bulk {q['bulk']} queued")
    click.echo(f"bulk tenants' messages waiting to be fed: {waiting}")
    for r in view["rate_limits"]:
        s = r.get("lane_shares") or {}
        if r["api"] == "create" and s.get("bulk") is not None:
            tenants = ", ".join(f"{t} {v}" for t, v in s["tenants"].items())
            click.echo(
                f"shares {r['project_id']}: interactive {s['interactive']}, bulk {s['bulk']}"
                + (f" (tenants' weighted grants: {tenants})" if tenants else "")
            )


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def inspect(as_json: bool) -> None:
    """Show the queue, waiting and failed tickets, effective rates and breakers."""
    settings = settings_or_exit()
    with producer_or_exit(settings) as producer:
        view = fleet_view(producer.store.redis, settings, with_tickets=True)
    if as_json:
        emit_json(view)
        return
    q, d = view["queue"], view["delayed"]
    click.echo(f"queue {q['name']}: {q['depth']} queued, {q['unacknowledged']} being worked on")
    click.echo(
        f"waiting in the delayed set: {d['depth']}"
        + (f" (next due in {d['next_due_in_s']} s)" if d["next_due_in_s"] is not None else "")
    )
    t = view["tickets"]
    click.echo(
        f"tickets: {t['queued']} queued, {t['running']} running, {t['retrying']} retrying,"
        f" {t['succeeded']} succeeded, {t['failed']} failed"
    )
    f = view["following"]
    click.echo(f"following: {f['tickets']} tasks on {f['instances']} instances")
    _echo_lanes(view)
    for r in view["rate_limits"]:
        blocked = f", blocked for {r['blocked_for_s']} s" if r["blocked_for_s"] else ""
        click.echo(
            f"rate {r['endpoint']} {r['project_id']} {r['api']}: {r['effective_per_s']}"
            f" of {r['configured_per_s']} calls/s{blocked}"
        )
    for b in view["breakers"]:
        open_for = f", open for {b['open_for_s']} s" if b["state"] == "open" else ""
        click.echo(f"breaker {b['endpoint']}: {b['state']} (opened {b['opened']} times){open_for}")
