"""What every command shares: exit codes, settings and a producer that fail cleanly, output.

Exit codes scripts can trust:

====  ===========================================================================
0     everything asked for happened (accepted; or, when waiting, succeeded)
1     a ticket failed, or a bulk row was invalid or in conflict
2     usage error, or an invalid request (nothing was queued)
3     conflict: another request holds the task name
4     a ticket was not found
5     the wait timed out before every ticket finished
69    Redis (or another service) is unreachable
71    a service cannot listen on its port (taken by another process, or not allowed)
78    a setting is wrong (the message names the variable)
====  ===========================================================================
"""

from __future__ import annotations

import json
import logging
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

import click
import redis
from kombu.exceptions import OperationalError
from rich.console import Console
from rich.markup import escape

from htap_sync.common.connections import make_redis
from htap_sync.common.errors import SettingsError
from htap_sync.common.logs import configure_logging
from htap_sync.common.models import TicketState, TicketStatus, Until
from htap_sync.common.settings import ENV_PREFIX, Settings, load_settings
from htap_sync.producer.api import Producer

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CONFLICT, EXIT_NOT_FOUND, EXIT_TIMEOUT = 0, 1, 2, 3, 4, 5
EXIT_UNAVAILABLE, EXIT_CANNOT_LISTEN, EXIT_CONFIG = 69, 71, 78

# soft_wrap: a line is never broken at the console's width (80 when not on a terminal), so
# an error stays one line for grep and CI logs.
err = Console(stderr=True, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


# Set from the settings: with HTAP_SYNC_LOG_FORMAT=json, an error is a JSON log line too.
_errors_as_json = {"on": False}
log = logging.getLogger("htap_sync.cli")


def fail(message: str, code: int) -> NoReturn:
    """Exit ``code`` after one line: ``error: message``, or a JSON log line (``level``
    ``error``, ``msg``, ``exit_code``) when the settings ask for JSON logs."""
    if _errors_as_json["on"]:
        log.error(message, extra={"exit_code": code})
    else:
        # The message is text, never markup: "[flower]" in a hint must stay.
        err.print(f"[red]error:[/red] {escape(message)}", highlight=False, markup=True)
    sys.exit(code)


def settings_or_exit(**overrides: Any) -> Settings:
    """The settings, or exit 78. Logging is set up from them: what a library logs (warnings
    and up) is one line in ``HTAP_SYNC_LOG_FORMAT``; services set their own level after."""
    try:
        settings = load_settings({k: v for k, v in overrides.items() if v is not None})
    except SettingsError as exc:
        fail(str(exc), EXIT_CONFIG)
    configure_logging(settings.observability.log_format, "WARNING")
    _errors_as_json["on"] = settings.observability.log_format == "json"
    return settings


@contextmanager
def producer_or_exit(settings: Settings) -> Iterator[Producer]:
    producer = Producer(settings)
    try:
        yield producer
    except (redis.RedisError, OperationalError) as exc:
        redis_failure(settings, exc)
    finally:
        producer.close()


def redis_failure(settings: Settings, exc: Exception) -> NoReturn:
    """Exit for a Redis error: 78 for a database the server does not have, else 69.

    The message shows where Redis is without its password.
    """
    where = settings.redis.display
    if isinstance(exc, redis.ResponseError) and "DB index is out of range" in str(exc):
        fail(
            f"{ENV_PREFIX}REDIS_URL: {where} names a database the server does not have"
            " (its 'databases' setting is smaller)",
            EXIT_CONFIG,
        )
    if isinstance(exc, redis.ResponseError | redis.AuthenticationError):
        fail(f"Redis at {where} refused us: {exc}", EXIT_UNAVAILABLE)
    fail(f"Redis at {where} is unreachable: {exc}", EXIT_UNAVAILABLE)


def redis_preflight(settings: Settings) -> None:
    """Exit now for a Redis that can never work: a database the server lacks (78) or refused
    credentials (69). An unreachable one passes: services answer 503 until it is back."""
    client = make_redis(settings)
    try:
        client.ping()
    except (redis.AuthenticationError, redis.exceptions.AuthorizationError) as exc:
        redis_failure(settings, exc)
    except redis.ConnectionError:
        pass
    except redis.RedisError as exc:
        redis_failure(settings, exc)
    finally:
        client.close()


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, separators=(",", ":")))


def describe(status: TicketStatus) -> str:
    """One line for a person: ticket, state, the task, job id or error, and its sync state."""
    detail = ""
    if status.job_id:
        detail = f"job_id={status.job_id}"
    elif status.reconciled:
        detail = "found by the list call (no job id)"
    elif status.error:
        e = status.error
        detail = f"{e.http_status or '-'} {e.error_code or ''} {e.error_msg}".strip()
    if status.sync is not None:
        sync = status.sync
        detail += f"  sync={sync.state.value}" + (f" stage={sync.stage}" if sync.stage else "")
        detail += f" ({sync.fail_reason})" if sync.fail_reason else ""
    return (
        f"{status.ticket}  {status.state.value:<9}  {status.task_ref}"
        f"  attempts={status.attempts}  {detail}"
    )


class Seconds(click.FloatRange):
    """A number of seconds, 0 or more and finite: ``nan`` would never end a wait (it passes a
    ``min=0`` check), and ``inf`` is refused like the settings refuse it."""

    name = "seconds"

    def __init__(self) -> None:
        super().__init__(min=0)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number of seconds.", param, ctx)
        return number


# `--timeout-s` of wait and bulk --wait: the deadline also bounds riding out a Redis outage.
timeout_option = click.option(
    "--timeout-s",
    default=3600.0,
    show_default=True,
    type=Seconds(),
    help="The longest wait, in seconds; an unreachable Redis is retried (with backoff) within"
    " it, then exit 69.",
)


# `--until` of wait and bulk --wait: the ticket's end, or its task's end.
until_option = click.option(
    "--until",
    type=click.Choice(["created", "synced"]),
    default="created",
    show_default=True,
    help="created: until each ticket succeeded or failed; synced: until each created task is"
    " syncing (stage Full or Incremental), failed to sync, or unknown past the follow deadline.",
)


F = TypeVar("F", bound=Callable[..., Any])


def lane_option(default: str) -> Callable[[F], F]:
    """``--lane`` of enqueue (default interactive) and bulk (default bulk)."""
    return click.option(
        "--lane",
        type=click.Choice(["interactive", "bulk"]),
        default=default,
        show_default=True,
        help="interactive: served before any bulk work; bulk: fair shares between tenants."
        " A row's own lane wins.",
    )


# `--tenant` of enqueue and bulk: the fairness key of the bulk lane (never sent to the API).
tenant_option = click.option(
    "--tenant",
    help="Whose fair share of the bulk lane the tickets take (default: each one's project;"
    " a row's own tenant wins). Never sent to the API.",
)


def reached(status: TicketStatus, until: Until) -> bool:
    """Whether a finished ticket got what the caller waited for."""
    return status.synced if until == "synced" else status.state is TicketState.SUCCEEDED


def wait_exit(statuses: dict[str, TicketStatus], until: Until = "created") -> int:
    """0 when every ticket got there, 5 when some are unfinished, 1 when any failed."""
    if not all(s.done(until) for s in statuses.values()):
        return EXIT_TIMEOUT
    return EXIT_OK if all(reached(s, until) for s in statuses.values()) else EXIT_FAILED
