"""Commands that run a service: a worker, the HTTP ingress, the simulator."""

from __future__ import annotations

import socket

import click
import redis

from htap_sync.cli.base import (
    EXIT_CANNOT_LISTEN,
    EXIT_CONFIG,
    fail,
    redis_failure,
    redis_preflight,
    settings_or_exit,
)
from htap_sync.common.errors import SettingsError
from htap_sync.simulator.cli import command as simulator
from htap_sync.worker.main import Pool

__all__ = ["api", "simulator", "worker"]


@click.command()
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
def worker(concurrency: int, pool: Pool, loglevel: str, hostname: str | None) -> None:
    """Run a worker that takes queued requests and calls the TaurusDB API."""
    settings = settings_or_exit()
    # Imported here, like the ingress below: the other commands need no worker machinery.
    from htap_sync.worker.main import run_worker

    try:
        stopped = run_worker(
            settings, concurrency=concurrency, pool=pool, loglevel=loglevel, hostname=hostname
        )
    except SettingsError as exc:
        fail(str(exc), EXIT_CONFIG)
    except redis.RedisError as exc:
        redis_failure(settings, exc)
    if stopped.exitcode:
        # Celery logged the error (with its traceback); this last line says it once, and the
        # exit code tells a supervisor the stop was no clean one.
        fail(f"the worker stopped on {stopped.error or 'an error'}", stopped.exitcode)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
def api(host: str, port: int) -> None:
    """Serve the HTTP ingress: enqueue and look up tickets over JSON (needs HTAP_SYNC_API_KEYS)."""
    settings = settings_or_exit()
    # Imported here: the other commands need neither Starlette nor uvicorn.
    from htap_sync.producer.ingress import serve_ingress

    redis_preflight(settings)
    can_listen_or_exit(host, port)
    try:
        serve_ingress(settings, host, port)
    except SettingsError as exc:
        fail(str(exc), EXIT_CONFIG)
    except SystemExit as exc:
        # uvicorn exits 3 when it cannot start (the port taken since the check above): 3 is
        # our "conflict", so say it our way.
        if exc.code == 3:
            fail(f"the ingress could not start on {host}:{port} (see above)", EXIT_CANNOT_LISTEN)
        raise


def can_listen_or_exit(host: str, port: int) -> None:
    """Exit 71 with one line when ``host:port`` cannot be listened on (taken, not ours)."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, _, _, _, address = found[0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # As uvicorn binds: SO_REUSEADDR, so a port in TIME_WAIT is not reported taken.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        fail(f"cannot listen on {host}:{port}: {reason}", EXIT_CANNOT_LISTEN)
