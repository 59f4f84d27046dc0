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
78    a setting is wrong (the message names the variable)
====  ===========================================================================
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import click
import redis
from kombu.exceptions import OperationalError
from rich.console import Console

from htap_sync.common.errors import SettingsError
from htap_sync.common.models import TicketStatus
from htap_sync.common.settings import Settings, load_settings
from htap_sync.producer.api import Producer

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CONFLICT, EXIT_NOT_FOUND, EXIT_TIMEOUT = 0, 1, 2, 3, 4, 5
EXIT_UNAVAILABLE, EXIT_CONFIG = 69, 78

err = Console(stderr=True)
out = Console(highlight=False)


def fail(message: str, code: int) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", highlight=False, markup=True)
    sys.exit(code)


def settings_or_exit(**overrides: Any) -> Settings:
    try:
        return load_settings({k: v for k, v in overrides.items() if v is not None})
    except SettingsError as exc:
        fail(str(exc), EXIT_CONFIG)


@contextmanager
def producer_or_exit(settings: Settings) -> Iterator[Producer]:
    producer = Producer(settings)
    try:
        yield producer
    except (redis.ConnectionError, redis.TimeoutError, OperationalError) as exc:
        fail(f"Redis at {settings.redis_url} is unreachable: {exc}", EXIT_UNAVAILABLE)
    finally:
        producer.close()


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, separators=(",", ":")))


def describe(status: TicketStatus) -> str:
    detail = ""
    if status.job_id:
        detail = f"job_id={status.job_id}"
    elif status.error:
        e = status.error
        detail = f"{e.http_status or '-'} {e.error_code or ''} {e.error_msg}".strip()
    return f"{status.ticket}  {status.state.value:<9}  attempts={status.attempts}  {detail}"


def wait_exit(statuses: dict[str, TicketStatus]) -> int:
    states = {s.state.value for s in statuses.values()}
    if not all(s.state.terminal for s in statuses.values()):
        return EXIT_TIMEOUT
    return EXIT_OK if states <= {"succeeded"} else EXIT_FAILED
