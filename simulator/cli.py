"""The simulator's one command line: `htap-sync simulator`, `python -m htap_sync.simulator`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import click

from htap_sync.simulator.config import EXISTING_NAME_MODES, SimulatorConfig

DEFAULT_PORT = 8090  # the ingress takes 8080

# Each --X-rate flag fills the SimulatorConfig field X_rate, in FAULT_RATE_FIELDS order.
RATE_FLAGS: tuple[tuple[str, str], ...] = (
    ("--fail-rate", "Answer 500 before creating."),
    ("--created-then-500-rate", "Create the task, then answer 500."),
    ("--drop-after-create-rate", "Create the task, then close the connection unanswered."),
    ("--hang-rate", "Create nothing, hold the request --hang-ms, then answer 500."),
    ("--hang-after-create-rate", "Create the task, hold the request --hang-ms, then answer."),
    ("--throttle-rate", "Answer 429 APIGW.0308 with Retry-After, create nothing."),
    ("--in-progress-rate", "Answer 409 DBS.200047 (operation in progress), create nothing."),
)


class Options(NamedTuple):
    """What a command line asks for: the simulator's config and where to serve it."""

    config: SimulatorConfig
    host: str
    port: int


def _int_or_none(ctx: click.Context, param: click.Parameter, value: str) -> int | None:
    if value.lower() == "none":
        return None
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter(f"not an integer or 'none': {value!r}") from None


def _rate_options(function: Any) -> Any:
    for flag, help_text in reversed(RATE_FLAGS):
        function = click.option(
            flag, default=0.0, show_default=True, type=float, metavar="RATE", help=help_text
        )(function)
    return function


def config_from_options(*, unknown_instance: Sequence[str] = (), **options: Any) -> SimulatorConfig:
    """Build a ``SimulatorConfig`` from the command's parsed options.

    Raises:
        ValueError: A value is out of range (the message names the field).
    """
    return SimulatorConfig(unknown_instances=frozenset(unknown_instance), **options)


@click.command("simulator", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535))
@click.option("--token", help="Accept X-Auth-Token equal to this.")
@click.option("--ak", help="Accept SDK-HMAC-SHA256 signatures made with this access key...")
@click.option("--sk", help="...and this secret key.")
@click.option(
    "--unknown-instance", multiple=True, metavar="ID", help="Answer DBS.200022 (repeatable)."
)
@click.option("--latency-ms", default=0, show_default=True, type=int, help="Delay per call.")
@_rate_options
@click.option("--hang-ms", default=30_000, show_default=True, type=int, help="How long a hang is.")
@click.option(
    "--retry-after-s",
    default="2",
    show_default=True,
    callback=_int_or_none,
    metavar="N|none",
    help="Retry-After of the 429s; 'none' omits the header.",
)
@click.option(
    "--seed",
    type=int,
    help="Seed of the fault injection and the failures to sync, to replay a run.",
)
@click.option(
    "--rate-limit-per-s",
    type=float,
    metavar="RATE",
    help="The gateway's own limit: creates per second per project, 429 beyond.",
)
@click.option("--rate-limit-burst", type=int, metavar="N", help="Burst of that limit.")
@click.option(
    "--iam-domain", metavar="ACCOUNT", help="Serve POST /v3/auth/tokens for this account..."
)
@click.option("--iam-user", metavar="USER", help="...this IAM user...")
@click.option("--iam-password", metavar="PWD", help="...and this password.")
# A standalone simulator paces tasks like a live service, only faster: each waits 1 s, loads
# in full for 1 s, then syncs; a new job shows after 0.5 s. SimulatorConfig's own defaults stay
# 0 (instant) for in-process tests, which set what they need.
@click.option(
    "--stage-wait-s",
    default=1.0,
    show_default=True,
    type=float,
    help="Seconds a new task stays in stage Wait.",
)
@click.option(
    "--stage-full-s",
    default=1.0,
    show_default=True,
    type=float,
    help="Then seconds in Full before Incremental.",
)
@click.option(
    "--sync-fail-rate",
    default=0.0,
    show_default=True,
    type=float,
    metavar="RATE",
    help="Share of created tasks that fail to sync (job Failed, Cancelled, status No or an"
    " ALTER error), drawn per task from --seed.",
)
@click.option(
    "--job-appear-delay-s",
    default=0.5,
    show_default=True,
    type=float,
    help="Seconds a new job is not found by the jobs API.",
)
@click.option(
    "--existing-name",
    type=click.Choice(EXISTING_NAME_MODES),
    default="reject-409",
    show_default=True,
    help="What a create with an existing task name answers (undocumented on the service).",
)
@click.option(
    "--alter-error-rate",
    default=0.0,
    show_default=True,
    type=float,
    metavar="RATE",
    help="Share of configured tasks whose configuration shows last_error_of_alter_table,"
    " drawn per task from --seed.",
)
@click.option(
    "--op-job-s",
    default=1.0,
    show_default=True,
    type=float,
    help="Seconds a pause, resume, delete or modify job runs (the task is busy meanwhile).",
)
@click.option(
    "--token-lifetime-s",
    default=86_400.0,
    show_default=True,
    type=float,
    help="Seconds an issued token stays valid.",
)
def command(host: str, port: int, **options: Any) -> None:
    """Serve a local TaurusDB HTAP endpoint (create, list, jobs, configuration checks and
    reads, modify, delete, pause, resume, parameters, databases) with task stages, failures to
    sync and fault injection."""
    try:
        config = config_from_options(**options)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    # Imported here: parsing options (and the product CLI's --help) needs no web server.
    from htap_sync.simulator.server import serve

    serve(config, host, port)


def parse(argv: Sequence[str]) -> Options:
    """Parse a command line into :class:`Options` without serving (for tests and tools).

    Raises:
        click.UsageError: An option is unknown or malformed.
        ValueError: A value is out of range (the message names the field).
    """
    with command.make_context("simulator", list(argv)) as ctx:
        params = dict(ctx.params)
    host, port = params.pop("host"), params.pop("port")
    return Options(config_from_options(**params), host, port)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse ``argv`` and serve until interrupted; a bad option exits 2 and names it."""
    command.main(args=list(argv) if argv is not None else None, prog_name="htap-sync simulator")
