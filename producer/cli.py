"""The ``htap-sync`` command line: enqueue, bulk, status, wait; runs workers, simulator, demo.

Exit codes scripts can trust:

====  ===========================================================================
0     everything asked for happened (accepted; or, when waiting, succeeded)
1     a ticket failed, or a bulk row was invalid or in conflict
2     usage error, or an invalid request (nothing was queued)
3     conflict: another request holds the task name
4     a ticket was not found
5     the wait timed out before every ticket finished
69    Redis (or another service) is unreachable
78    a setting is wrong (the message names the variable)
====  ===========================================================================
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

import click
import redis
from kombu.exceptions import OperationalError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from common.errors import RequestInvalid, SettingsError, TicketConflict, TicketNotFound
from common.fleet import fleet_view
from common.models import TicketStatus
from common.settings import Settings, load_settings
from producer.api import Producer
from producer.bulk import BulkReport, fill_statuses, submit_rows
from producer.bulk_file import Format, read_rows

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CONFLICT, EXIT_NOT_FOUND, EXIT_TIMEOUT = 0, 1, 2, 3, 4, 5
EXIT_UNAVAILABLE, EXIT_CONFIG = 69, 78

err = Console(stderr=True)
out = Console(highlight=False)


def _fail(message: str, code: int) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", highlight=False, markup=True)
    sys.exit(code)


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings({k: v for k, v in overrides.items() if v is not None})
    except SettingsError as exc:
        _fail(str(exc), EXIT_CONFIG)


@contextmanager
def _producer(settings: Settings) -> Iterator[Producer]:
    producer = Producer(settings)
    try:
        yield producer
    except (redis.ConnectionError, redis.TimeoutError, OperationalError) as exc:
        _fail(f"Redis at {settings.redis_url} is unreachable: {exc}", EXIT_UNAVAILABLE)
    finally:
        producer.close()


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, separators=(",", ":")))


def _describe(status: TicketStatus) -> str:
    detail = ""
    if status.job_id:
        detail = f"job_id={status.job_id}"
    elif status.error:
        e = status.error
        detail = f"{e.http_status or '-'} {e.error_code or ''} {e.error_msg}".strip()
    return f"{status.ticket}  {status.state.value:<9}  attempts={status.attempts}  {detail}"


def _wait_exit(statuses: dict[str, TicketStatus]) -> int:
    states = {s.state.value for s in statuses.values()}
    if not all(s.state.terminal for s in statuses.values()):
        return EXIT_TIMEOUT
    return EXIT_OK if states <= {"succeeded"} else EXIT_FAILED


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="taurus-htap-sync")
def main() -> None:
    """Create TaurusDB HTAP -> StarRocks data-sync tasks through a Redis queue.

    Settings come from HTAP_SYNC_* environment variables or a .env file (see the README).
    """


@main.command()
@click.option("--project-id", help="32 letters/digits; default HTAP_SYNC_PROJECT_ID.")
@click.option("--instance-id", required=True, help="The StarRocks (HTAP) instance.")
@click.option("--source-instance-id", required=True, help="The TaurusDB source instance.")
@click.option("--source-node-id", help="A read-replica node; omitted means the primary.")
@click.option("--source-database", required=True)
@click.option("--target-database", required=True)
@click.option("--task-name", required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the ticket as JSON.")
def enqueue(as_json: bool, **fields: str | None) -> None:
    """Validate one creation request and queue it; prints its ticket."""
    settings = _settings()
    request = {k: v for k, v in fields.items() if v is not None}
    with _producer(settings) as producer:
        try:
            receipt = producer.enqueue(request)
        except RequestInvalid as exc:
            if as_json:
                _emit_json({"state": "invalid", "errors": exc.errors})
            _fail(f"invalid request: {exc}", EXIT_USAGE)
        except TicketConflict as exc:
            if as_json:
                _emit_json({"state": "conflict", "ticket": exc.ticket, "errors": [str(exc)]})
            _fail(str(exc), EXIT_CONFLICT)
        status = producer.status(receipt.ticket)
    if as_json:
        _emit_json({"outcome": receipt.outcome.value, **status.to_json()})
    else:
        click.echo(f"{receipt.ticket} {receipt.outcome.value}")


@main.command()
@click.argument("tickets", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def status(tickets: tuple[str, ...], as_json: bool) -> None:
    """Show tickets' states, job ids and errors."""
    settings = _settings()
    code = EXIT_OK
    with _producer(settings) as producer:
        for ticket, found in producer.statuses(tickets).items():
            if found is None:
                code = EXIT_NOT_FOUND
                if as_json:
                    _emit_json({"ticket": ticket, "state": "not_found"})
                else:
                    click.echo(f"{ticket}  not found")
            elif as_json:
                _emit_json(found.to_json())
            else:
                click.echo(_describe(found))
    sys.exit(code)


@main.command()
@click.argument("tickets", nargs=-1, required=True)
@click.option("--timeout-s", default=3600.0, show_default=True, type=click.FloatRange(min=0))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def wait(tickets: tuple[str, ...], timeout_s: float, as_json: bool) -> None:
    """Wait until tickets finish; exit 0 only if all succeeded."""
    settings = _settings()
    with _producer(settings) as producer:
        try:
            statuses = producer.wait(tickets, timeout_s=timeout_s)
        except TicketNotFound as exc:
            _fail(str(exc), EXIT_NOT_FOUND)
    for found in statuses.values():
        _emit_json(found.to_json()) if as_json else click.echo(_describe(found))
    sys.exit(_wait_exit(statuses))


@main.command()
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def failed(limit: int, as_json: bool) -> None:
    """List failed tickets (most recent first) with their last error."""
    settings = _settings()
    with _producer(settings) as producer:
        tickets = producer.failed(limit=limit)
    for found in tickets:
        if as_json:
            _emit_json(found.to_json())
        else:
            click.echo(f"{_describe(found)}  task={found.request.task_name}")
    if not as_json:
        err.print(f"{len(tickets)} failed", highlight=False)


@main.command()
@click.argument("tickets", nargs=-1)
@click.option("--all-failed", is_flag=True, help="Re-drive every failed ticket.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def retry(tickets: tuple[str, ...], all_failed: bool, as_json: bool) -> None:
    """Send failed tickets again (their recorded requests); in-flight ones are left alone."""
    if bool(tickets) == all_failed:
        raise click.UsageError("name TICKETs or give --all-failed (not both)")
    settings = _settings()
    code = EXIT_OK
    with _producer(settings) as producer:
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
                _emit_json(row)
            else:
                click.echo(f"{row['ticket']}  {row['outcome']}")
    sys.exit(code)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def inspect(as_json: bool) -> None:
    """Show the queue, waiting and failed tickets, effective rates and breakers."""
    settings = _settings()
    with _producer(settings) as producer:
        view = fleet_view(producer.store.redis, settings, with_tickets=True)
    if as_json:
        _emit_json(view)
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
    for r in view["rate_limits"]:
        blocked = f", blocked for {r['blocked_for_s']} s" if r["blocked_for_s"] else ""
        click.echo(
            f"rate {r['endpoint']} {r['project_id']} {r['api']}: {r['effective_per_s']}"
            f" of {r['configured_per_s']} calls/s{blocked}"
        )
    for b in view["breakers"]:
        open_for = f", open for {b['open_for_s']} s" if b["state"] == "open" else ""
        click.echo(f"breaker {b['endpoint']}: {b['state']} (opened {b['opened']} times){open_for}")


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


@contextmanager
def _progress(enabled: bool) -> Iterator[Progress | None]:
    if not enabled:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=err, transient=False) as bar:
        yield bar


def run_bulk(
    settings: Settings,
    path: Path,
    *,
    fmt: Format | None,
    wait_s: float | None,
    show_progress: bool,
    write: Callable[[str], None],
) -> BulkReport:
    """Submit a bulk file, optionally wait, write one JSON line per input row."""
    with _producer(settings) as producer, _progress(show_progress) as bar:
        total = _count_lines(path)
        task = bar.add_task("queueing", total=total) if bar else None

        def advance(report: BulkReport) -> None:
            if bar is not None and task is not None:
                bar.update(task, completed=report.counts["rows"])

        report = submit_rows(producer, read_rows(path, fmt), on_row=advance)
        if bar is not None and task is not None:
            bar.update(task, total=report.counts["rows"], completed=report.counts["rows"])
        if wait_s is not None and report.tickets:
            unique = len(set(report.tickets.values()))
            done_task = bar.add_task("finished", total=unique) if bar else None

            def on_poll(found: dict[str, TicketStatus]) -> None:
                if bar is not None and done_task is not None:
                    finished = sum(1 for s in found.values() if s.state.terminal)
                    bar.update(done_task, completed=finished)

            statuses = producer.wait(report.tickets.values(), timeout_s=wait_s, on_poll=on_poll)
            report.apply_statuses(statuses)
        else:
            fill_statuses(producer, report)
    for entry in report.lines:
        write(json.dumps(entry, separators=(",", ":")))
    return report


def _summary(report: BulkReport, waited: bool) -> str:
    c = report.counts
    text = (
        f"rows {c['rows']}: accepted {c['accepted']} (new {c['queued']}, duplicate"
        f" {c['duplicate']}, re-driven {c['redriven']}), conflict {c['conflict']},"
        f" invalid {c['invalid']}"
    )
    if waited:
        unfinished = len(report.tickets) - c["succeeded"] - c["failed"]
        text += f"; succeeded {c['succeeded']}, failed {c['failed']}, unfinished {unfinished}"
    return text


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), help="Default: by suffix.")
@click.option("--wait", "wait_", is_flag=True, help="Wait for every ticket to finish.")
@click.option("--timeout-s", default=3600.0, show_default=True, type=click.FloatRange(min=0))
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the JSON Lines results here (default: standard output).",
)
@click.option("--progress/--no-progress", default=None, help="Default: on a terminal only.")
def bulk(
    file: Path,
    fmt: Format | None,
    wait_: bool,
    timeout_s: float,
    output: Path | None,
    progress: bool | None,
) -> None:
    """Submit every row of a CSV (with a header) or JSON Lines FILE; one result line per row."""
    settings = _settings()
    show = err.is_terminal if progress is None else progress
    handle = output.open("w", encoding="utf-8") if output else sys.stdout

    def write(line: str) -> None:
        handle.write(line + "\n")

    try:
        report = run_bulk(
            settings,
            file,
            fmt=fmt,
            wait_s=timeout_s if wait_ else None,
            show_progress=show,
            write=write,
        )
    finally:
        if output:
            handle.close()
    err.print(_summary(report, wait_), highlight=False, soft_wrap=True)
    if wait_:
        unfinished = len(report.tickets) - report.counts["succeeded"] - report.counts["failed"]
        if report.all_succeeded():
            sys.exit(EXIT_OK)
        sys.exit(EXIT_TIMEOUT if unfinished and report.counts["failed"] == 0 else EXIT_FAILED)
    sys.exit(EXIT_OK if report.all_accepted else EXIT_FAILED)


@main.command()
@click.option("--concurrency", "-c", default=8, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--pool",
    type=click.Choice(["threads", "prefork", "solo"]),
    default="threads",
    show_default=True,
    help="threads suits the I/O-bound calls.",
)
@click.option("--loglevel", default="INFO", show_default=True)
@click.option("--hostname", help="Celery node name (default: celery@HOST).")
def worker(concurrency: int, pool: str, loglevel: str, hostname: str | None) -> None:
    """Run a worker that takes queued requests and calls the TaurusDB API."""
    settings = _settings()
    # Loaded by name, as Celery's -A does: the producer package does not depend on the worker.
    runner = importlib.import_module("worker.main")
    try:
        runner.run_worker(
            settings, concurrency=concurrency, pool=pool, loglevel=loglevel, hostname=hostname
        )
    except SettingsError as exc:
        _fail(str(exc), EXIT_CONFIG)
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        _fail(f"Redis at {settings.redis_url} is unreachable: {exc}", EXIT_UNAVAILABLE)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
def api(host: str, port: int) -> None:
    """Serve the HTTP ingress: enqueue and look up tickets over JSON (needs HTAP_SYNC_API_KEYS)."""
    settings = _settings()
    # Imported here: the other commands need neither Starlette nor uvicorn.
    from producer.ingress import serve_ingress

    try:
        serve_ingress(settings, host, port)
    except SettingsError as exc:
        _fail(str(exc), EXIT_CONFIG)


def _retry_after(value: str) -> int | None:
    return None if value.lower() == "none" else int(value)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8090, show_default=True, type=click.IntRange(0, 65535))
@click.option("--token", help="Accept this X-Auth-Token.")
@click.option("--ak", help="Accept SDK-HMAC-SHA256 signatures made with this access key...")
@click.option("--sk", help="...and this secret key.")
@click.option("--unknown-instance", multiple=True, help="Answer DBS.200022 for this instance.")
@click.option("--latency-ms", default=0, show_default=True, type=click.IntRange(min=0))
@click.option(
    "--fail-rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Creates answered 500 before creating.",
)
@click.option(
    "--created-then-500-rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Creates that create, then answer 500.",
)
@click.option(
    "--drop-after-create-rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Creates that create, then drop the connection.",
)
@click.option(
    "--hang-rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Creates held for --hang-ms, creating nothing, then answered 500.",
)
@click.option(
    "--hang-after-create-rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Creates that create, then hold the answer.",
)
@click.option("--hang-ms", default=30_000, show_default=True, type=click.IntRange(min=0))
@click.option(
    "--throttle-rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Creates answered 429 APIGW.0308.",
)
@click.option(
    "--retry-after-s", default="2", show_default=True, help="Retry-After of the 429s, or 'none'."
)
@click.option(
    "--in-progress-rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Creates answered 409 DBS.200047.",
)
@click.option(
    "--rate-limit-per-s",
    type=click.FloatRange(min=0, min_open=True),
    help="The gateway's own limit: creates per second per project, 429 beyond.",
)
@click.option("--rate-limit-burst", type=click.IntRange(min=1), help="Burst of that limit.")
@click.option("--iam-domain", help="Serve POST /v3/auth/tokens for this account...")
@click.option("--iam-user", help="...this IAM user...")
@click.option("--iam-password", help="...and this password.")
@click.option(
    "--token-lifetime-s",
    default=86400.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Lifetime of issued tokens.",
)
@click.option("--seed", type=int, help="Seed of the fault injection, to replay a run.")
def simulator(
    unknown_instance: tuple[str, ...], retry_after_s: str, host: str, port: int, **fields: Any
) -> None:
    """Serve a local TaurusDB HTAP endpoint (create and list calls) with fault injection."""
    sim = importlib.import_module("simulator")
    try:
        config = sim.SimulatorConfig(
            unknown_instances=frozenset(unknown_instance),
            retry_after_s=_retry_after(retry_after_s),
            **fields,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    sim.serve(config, host=host, port=port)


@main.command()
@click.option(
    "--file",
    "file_",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Requests to send (default: the shipped sample of 50).",
)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 8))
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the JSON Lines results here.",
)
def demo(file_: Path | None, workers: int, output: Path | None) -> None:
    """Run the whole pipeline on embedded defaults: Redis, simulator, worker, a sample file."""
    from producer.embedded import Stack

    sample = file_ or Path(str(resources.files("producer") / "samples" / "demo.csv"))
    err.print(f"[bold]htap-sync demo[/bold]: {sample.name} through a local stack", highlight=False)
    with Stack(workers=workers, simulator_args=["--latency-ms", "20"]) as stack:
        assert stack.redis is not None
        err.print(
            f"  redis {stack.redis.url}   simulator {stack.simulator_url}   workers {workers}",
            highlight=False,
        )
        settings = _settings(
            redis_url=stack.redis.url, endpoint=stack.simulator_url, auth_token=stack.token
        )
        lines: list[str] = []
        report = run_bulk(
            settings, sample, fmt=None, wait_s=300.0, show_progress=True, write=lines.append
        )
    if output:
        output.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    table = Table(title="results", show_lines=False)
    for column in ("line", "task_name", "state", "job_id / error"):
        table.add_column(column)
    for entry in report.lines:
        request = entry.get("request") or {}
        error = entry.get("error") or {}
        detail = (
            entry.get("job_id")
            or error.get("error_msg")
            or ", ".join(e["message"] for e in entry.get("errors", []))
        )
        table.add_row(str(entry["line"]), request.get("task_name", "-"), entry["state"], detail)
    out.print(table)
    err.print(_summary(report, waited=True), highlight=False, soft_wrap=True)
    sys.exit(EXIT_OK if report.all_succeeded() else EXIT_FAILED)


if __name__ == "__main__":
    main()
