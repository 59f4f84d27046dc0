"""``htap-sync flower``: Flower on the fleet's own broker settings (needs the ``flower`` extra).

Flower started by hand (``celery flower --broker=...``) knows only a broker URL, not the key
prefix every broker key of the fleet lives under (kombu's ``global_keyprefix``), and shows no
worker and no task. This command hands Flower the Celery app the workers use, built from the
same ``HTAP_SYNC_*`` settings, so it sees exactly their queue, events and workers.

Flower turns the workers' task events on remotely (every 5 s) while it runs; a create task
whose ticket failed ends in FAILURE there with the ticket's error.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from dataclasses import dataclass
from types import FrameType
from typing import Any, NoReturn

import click

from htap_sync.cli.base import EXIT_CONFIG, EXIT_USAGE, fail, settings_or_exit
from htap_sync.common.celery_app import make_celery
from htap_sync.common.logs import configure_logging
from htap_sync.common.settings import Settings, is_loopback

__all__ = ["FlowerOptions", "flower", "parse_users", "run_flower"]

log = logging.getLogger("htap_sync.flower")
INSTALL_HINT = (
    "Flower is not installed: pip install 'taurus-htap-sync[flower]' (from a clone:"
    " pip install -e '.[flower]'; without -e, pip replaces the editable install)"
)


@dataclass(frozen=True)
class FlowerOptions:
    """How Flower serves: where, who may look, and whether its HTTP API answers.

    Attributes:
        users: ``user:password`` pairs for HTTP basic auth; empty means no login.
        api: serve Flower's HTTP API under ``/api/``; off, it answers 404.
        read_only: refuse Flower's control operations (revoke, shut down, pool changes).
        max_tasks: tasks Flower keeps in memory (the oldest are dropped first).
    """

    address: str = "127.0.0.1"
    port: int = 5555
    users: tuple[str, ...] = ()
    api: bool = False
    read_only: bool = True
    url_prefix: str = ""
    max_tasks: int = 10_000


def api_off_handler() -> type[Any]:
    """A tornado handler that answers every ``/api/`` path 404, in the product's error shape.

    Built on demand: tornado comes with the ``flower`` extra, which the rest of the CLI lacks.
    """
    import tornado.web

    class ApiOff(tornado.web.RequestHandler):
        def check_xsrf_cookie(self) -> None:
            """No form is ever accepted here, so no XSRF token is asked for."""

        def prepare(self) -> None:
            """Refuse the request before any handler runs."""
            rule = "Flower's API is off; start htap-sync flower with --api"
            self.set_status(404)
            self.finish({"errors": [{"field": "path", "rule": rule, "message": f"path: {rule}"}]})

    return ApiOff


def parse_users(text: str | None) -> tuple[str, ...]:
    """``user:password[,user:password...]`` as a tuple of pairs; empty for None or ''.

    Raises:
        ValueError: a pair without a user or a password (the value is never echoed).
    """
    pairs = tuple(p.strip() for p in (text or "").split(",") if p.strip())
    for pair in pairs:
        user, sep, password = pair.partition(":")
        if not (sep and user and password):
            raise ValueError("--basic-auth / FLOWER_BASIC_AUTH: each entry must be user:password")
    return pairs


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Raised in the main thread, which runs the IO loop: it ends Flower's start() below.
    raise SystemExit(0)


def run_flower(settings: Settings, options: FlowerOptions) -> None:
    """Serve Flower on the fleet's broker until SIGTERM or Ctrl-C (blocking).

    Raises:
        ImportError: the ``flower`` extra is not installed.
        OSError: the port cannot be bound.
    """
    from flower.app import Flower  # type: ignore[import-untyped]
    from flower.command import extract_settings  # type: ignore[import-untyped]
    from flower.command import setup_logging as quiet_access_log
    from flower.options import options as flower_options  # type: ignore[import-untyped]
    from flower.urls import settings as app_settings  # type: ignore[import-untyped]

    configure_logging(settings.observability.log_format)
    values: dict[str, Any] = {
        "address": options.address,
        "port": options.port,
        "basic_auth": list(options.users),
        "read_only": options.read_only,
        "url_prefix": options.url_prefix,
        "max_tasks": options.max_tasks,
    }
    for name, value in values.items():
        setattr(flower_options, name, value)
    if options.api and not options.users:
        # Flower's own switch for an API without a login.
        os.environ["FLOWER_UNAUTHENTICATED_API"] = "true"
        if not is_loopback(options.address):
            log.warning("Flower's API answers anyone who reaches %s", options.address)
    extract_settings()
    quiet_access_log()
    app = Flower(capp=make_celery(settings), options=flower_options, **app_settings)
    if not options.api:
        prefix = f"/{options.url_prefix.strip('/')}" if options.url_prefix.strip("/") else ""
        app.add_handlers(r".*", [(rf"{prefix}/api/.*", api_off_handler())])
    port = app.start_http_server()
    log.info(
        "Flower on http://%s:%d/ (API %s, %s), broker %s, queue %s",
        options.address,
        port,
        "on" if options.api else "off",
        "basic auth" if options.users else "no login",
        settings.redis.display,
        settings.queue,
    )
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        app.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        app.stop()


@click.command()
@click.option("--address", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=5555, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--basic-auth",
    envvar="FLOWER_BASIC_AUTH",
    metavar="USER:PASSWORD[,...]",
    help="Require an HTTP basic login. Prefer the FLOWER_BASIC_AUTH variable: other users of"
    " the host can read a command line.",
)
@click.option(
    "--api/--no-api",
    default=False,
    show_default=True,
    help="Serve Flower's HTTP API under /api/ (behind the basic login when one is set).",
)
@click.option(
    "--read-only/--control",
    default=True,
    show_default=True,
    help="read-only: Flower cannot revoke tasks or shut workers down.",
)
@click.option("--url-prefix", default="", help="Serve under this path (behind a proxy).")
@click.option(
    "--max-tasks",
    default=10_000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Tasks kept in memory.",
)
def flower(
    address: str,
    port: int,
    basic_auth: str | None,
    api: bool,
    read_only: bool,
    url_prefix: str,
    max_tasks: int,
) -> None:
    """Watch the fleet's workers and tasks in Flower (pip install 'taurus-htap-sync[flower]')."""
    settings = settings_or_exit()
    try:
        users = parse_users(basic_auth)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    options = FlowerOptions(address, port, users, api, read_only, url_prefix, max_tasks)
    try:
        run_flower(settings, options)
    except ImportError:
        fail(INSTALL_HINT, EXIT_CONFIG)
    except OSError as exc:
        fail(f"--port: cannot serve on {address}:{port}: {exc.strerror or exc}", EXIT_CONFIG)
    exit_now()


def exit_now(code: int = 0) -> NoReturn:
    """End the process without waiting for Flower's worker threads.

    Flower asks the broker from executor threads (inspect, enable events); with Redis down
    they sit in kombu's connection retries for minutes, and the interpreter joins them before
    it exits: a SIGTERM then took ~2 minutes. Flower has stopped serving here; what is left
    to write is flushed first.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)
