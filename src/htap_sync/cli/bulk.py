"""``htap-sync bulk``: a CSV or JSON Lines file of requests in, one JSON result line per row out."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from htap_sync.cli.base import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    err,
    fail,
    lane_option,
    producer_or_exit,
    settings_or_exit,
    tenant_option,
    timeout_option,
    until_option,
)
from htap_sync.common.lanes import Lane
from htap_sync.common.models import TicketStatus, Until
from htap_sync.common.settings import Settings
from htap_sync.producer.api import Producer
from htap_sync.producer.bulk import BulkReport, fill_statuses, submit_rows
from htap_sync.producer.bulk_file import BulkFileError, Format, check_file, read_rows


def count_rows(path: Path, fmt: Format) -> int:
    """The rows to expect, for the progress bar: the non-blank lines, less a CSV's header.

    A CSV cell holding a line break makes it an estimate; the bar's total is set to the
    real count at the end.
    """
    with path.open("rb") as handle:
        lines = sum(1 for line in handle if line.strip())
    return max(0, lines - 1) if fmt == "csv" else lines


@contextmanager
def _progress(enabled: bool) -> Iterator[Progress | None]:
    if not enabled:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=err, transient=False) as bar:
        yield bar


class _Output:
    """The results file, written beside its target and renamed onto it at the end.

    The target is replaced only once a line was written: a run that stops before its first
    row (a bad file, a bad setting, a Redis that refuses us) leaves whatever was there.
    """

    def __init__(self, target: Path) -> None:
        self.target = target.resolve() if target.is_symlink() else target  # the file it names
        self.lines = 0
        self.temp: Path | None = None
        self.handle: TextIO
        if self.target.exists() and not self.target.is_file():
            # A pipe or a device (-o /dev/stdout): nothing there to keep, nothing to rename.
            self.handle = self.target.open("w", encoding="utf-8")
            return
        fd, name = tempfile.mkstemp(
            prefix=f".{self.target.name}.", suffix=".part", dir=self.target.parent
        )
        self.temp = Path(name)
        self.handle = os.fdopen(fd, "w", encoding="utf-8")

    def write(self, line: str) -> None:
        self.handle.write(line + "\n")
        self.lines += 1

    def close(self) -> None:
        """Rename the results onto the target when there are any, else drop them."""
        self.handle.close()
        if self.temp is None:
            return
        if not self.lines:
            self.temp.unlink(missing_ok=True)
            return
        try:
            mode = self.target.stat().st_mode & 0o7777
        except FileNotFoundError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        self.temp.chmod(mode)  # mkstemp makes it 0600; keep the target's own mode
        self.temp.replace(self.target)


def _open_output(source: Path, output: Path) -> _Output:
    """The results file for ``-o``; exit 2 when it is the input or cannot be written."""
    same = output.exists() and output.samefile(source)
    if same or output.resolve() == source.resolve():
        fail(f"--output {output} is the input file; write the results to another file", EXIT_USAGE)
    try:
        return _Output(output)
    except OSError as exc:
        fail(f"--output {output}: cannot write beside it ({exc.strerror})", EXIT_USAGE)


def run_bulk(
    settings: Settings,
    path: Path,
    *,
    fmt: Format | None,
    wait_s: float | None,
    show_progress: bool,
    write: Callable[[str], None],
    until: Until = "created",
    lane: Lane | None = None,
    tenant: str | None = None,
) -> BulkReport:
    """Submit a bulk file, optionally wait (``until`` a milestone), write a line per row.

    A file that cannot be read as a whole (empty, not UTF-8, a wrong header) exits 2 before
    anything is queued.
    """
    try:
        fmt = check_file(path, fmt, project_default=settings.cloud.project_id is not None)
    except BulkFileError as exc:
        fail(str(exc), EXIT_USAGE)
    report = BulkReport()
    with producer_or_exit(settings) as producer, _progress(show_progress) as bar:
        total = count_rows(path, fmt)
        task = bar.add_task("queueing", total=total) if bar else None

        def advance(report: BulkReport) -> None:
            if bar is not None and task is not None:
                bar.update(task, completed=report.counts["rows"])

        try:
            rows = read_rows(path, fmt)
            submit_rows(producer, rows, on_row=advance, report=report, lane=lane, tenant=tenant)
            if bar is not None and task is not None:
                bar.update(task, total=report.counts["rows"], completed=report.counts["rows"])
            if wait_s is not None and report.tickets:
                _wait(producer, report, wait_s=wait_s, until=until, bar=bar)
            else:
                fill_statuses(producer, report)
        finally:
            # Whatever stops the run (Redis gone while queueing, or for longer than the wait
            # rides out), every row handled so far gets its line with what is known: its
            # outcome and its ticket. The batch Redis failed on and the rows after it have
            # none; sending the file again accounts for them (a queued row is a duplicate).
            for entry in report.lines:
                write(json.dumps(entry, separators=(",", ":")))
    return report


def _wait(
    producer: Producer, report: BulkReport, *, wait_s: float, until: Until, bar: Progress | None
) -> None:
    unique = len(set(report.tickets.values()))
    done_task = bar.add_task("finished", total=unique) if bar else None

    def on_poll(found: dict[str, TicketStatus]) -> None:
        if bar is not None and done_task is not None:
            finished = sum(1 for s in found.values() if s.done(until))
            bar.update(done_task, completed=finished)

    statuses = producer.wait(
        report.tickets.values(), timeout_s=wait_s, on_poll=on_poll, until=until
    )
    report.apply_statuses(statuses, until)


def summary(report: BulkReport, waited: bool) -> str:
    c = report.counts
    text = (
        f"rows {c['rows']}: accepted {c['accepted']} (new {c['queued']}, duplicate"
        f" {c['duplicate']}, re-driven {c['redriven']}), conflict {c['conflict']},"
        f" invalid {c['invalid']}"
    )
    if waited:
        text += f"; succeeded {c['succeeded']}, failed {c['failed']}, unfinished {c['unfinished']}"
    if any(key.startswith("sync_") for key in c):
        text += (
            f"; tasks syncing {c['sync_syncing']}, following {c['sync_following']},"
            f" failed to sync {c['sync_failed']}, unknown {c['sync_unknown']}"
        )
    return text


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), help="Default: by suffix.")
@click.option("--wait", "wait_", is_flag=True, help="Wait for every ticket to finish.")
@timeout_option
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the JSON Lines results here (default: standard output): to a file beside it,"
    " renamed onto it once a row was handled; a run that stops before leaves it as it was.",
)
@click.option("--progress/--no-progress", default=None, help="Default: on a terminal only.")
@until_option
@lane_option("bulk")
@tenant_option
def bulk(
    file: Path,
    fmt: Format | None,
    wait_: bool,
    timeout_s: float,
    output: Path | None,
    progress: bool | None,
    until: Until,
    lane: Lane,
    tenant: str | None,
) -> None:
    """Submit every row of a CSV (with a header) or JSON Lines FILE; one result line per row."""
    settings = settings_or_exit()
    show = err.is_terminal if progress is None else progress
    results = _open_output(file, output) if output else None

    def write(line: str) -> None:
        if results is not None:
            results.write(line)
        else:
            sys.stdout.write(line + "\n")

    try:
        report = run_bulk(
            settings,
            file,
            fmt=fmt,
            wait_s=timeout_s if wait_ else None,
            show_progress=show,
            write=write,
            until=until,
            lane=lane,
            tenant=tenant,
        )
    finally:
        if results is not None:
            results.close()
    err.print(summary(report, wait_), highlight=False, soft_wrap=True)
    if wait_:
        if report.all_succeeded(until):
            sys.exit(EXIT_OK)
        c = report.counts
        went_wrong = c["failed"] + c["sync_failed"] + c["sync_unknown"]
        sys.exit(EXIT_TIMEOUT if c["unfinished"] and not went_wrong else EXIT_FAILED)
    sys.exit(EXIT_OK if report.all_accepted else EXIT_FAILED)
