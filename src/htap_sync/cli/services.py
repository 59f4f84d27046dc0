"""Commands that run a service: a worker, the HTTP ingress, the simulator."""

from __future__ import annotations

import click
import redis

from htap_sync.cli.base import EXIT_CONFIG, fail, redis_failure, redis_preflight, settings_or_exit
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
        run_worker(
            settings, concurrency=concurrency, pool=pool, loglevel=loglevel, hostname=hostname
        )
    except SettingsError as exc:
        fail(str(exc), EXIT_CONFIG)
    except redis.RedisError as exc:
        redis_failure(settings, exc)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
def api(host: str, port: int) -> None:
    """Serve the HTTP ingress: enqueue and look up tickets over JSON (needs HTAP_SYNC_API_KEYS)."""
    settings = settings_or_exit()
    # Imported here: the other commands need neither Starlette nor uvicorn.
    from htap_sync.producer.ingress import serve_ingress

    redis_preflight(settings)
    try:
        serve_ingress(settings, host, port)
    except SettingsError as exc:
        fail(str(exc), EXIT_CONFIG)
