"""Starts a Celery worker for the create task (what ``htap-sync worker`` runs)."""

from __future__ import annotations

import logging
import os
import tempfile
from typing import Any, Literal

from celery.signals import celeryd_init

from htap_sync.common.connections import make_redis
from htap_sync.common.lanes import queue_names
from htap_sync.common.logs import JsonFormatter, configure_logging
from htap_sync.common.settings import Settings
from htap_sync.worker.preflight import check_eviction_policy

Pool = Literal["threads", "prefork", "solo"]


def run_worker(
    settings: Settings,
    *,
    concurrency: int = 8,
    pool: Pool = "threads",
    loglevel: str = "INFO",
    hostname: str | None = None,
) -> Stopped:
    """Run a worker in the foreground until it is told to stop (SIGTERM: warm shutdown).

    Threads are the default pool: the work is waiting on HTTP, not computing. Celery's banner
    is off (``--quiet``): with JSON logs, every line is JSON.

    Returns:
        how the worker stopped: its exit code (0 for a shutdown asked for) and, when Celery
        stopped it on an unrecoverable error, that error.

    Raises:
        SettingsError: the endpoint or another setting a worker needs is missing or wrong, or
            the Redis may evict keys.
        redis.ConnectionError: Redis is unreachable at start.
        redis.ResponseError: Redis refuses the database of ``HTAP_SYNC_REDIS_URL``.
    """
    if pool == "prefork" and settings.observability.metrics_port is not None:
        # prometheus_client chooses where values live when it is first imported: with prefork,
        # in files the parent sums (its multiprocess mode), so switch before anything imports it.
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="htap-prom-"))
    from htap_sync.worker.tasks import make_worker_app

    # From the first line on (the Redis checks log, Celery warns before its logging set-up).
    configure_logging(settings.observability.log_format, loglevel)

    app = make_worker_app(settings, loglevel=loglevel, concurrency=concurrency)
    if settings.observability.log_format == "json":
        _say_as_json()
    client = make_redis(settings)
    try:
        # Connecting selects the database: one the server lacks fails here (exit 78), not in
        # Celery's endless reconnect loop (the check below reads CONFIG and would only warn).
        client.ping()
        check_eviction_policy(client, allow_evicting=settings.redis.allow_evicting)
    finally:
        client.close()
    argv = [
        "--quiet",
        "worker",
        f"--concurrency={concurrency}",
        f"--pool={pool}",
        f"--loglevel={loglevel}",
        f"--queues={','.join(queue_names(settings))}",  # every lane, interactive first
        "--without-gossip",
        "--without-mingle",
    ]
    if hostname:
        argv.append(f"--hostname={hostname}")
    stopped = Stopped()
    celeryd_init.connect(stopped.keep, weak=False)
    logging.getLogger("celery.worker").addFilter(stopped.note)  # WorkController's logger
    app.worker_main(argv)  # which drops Celery's exit code: read it from the worker
    return stopped


def _say_as_json() -> None:
    """Celery writes a few lines past logging (warm shutdown, restart): JSON them too."""
    import celery.apps.worker

    celery.apps.worker.safe_say = say_as_json  # type: ignore[attr-defined]


def say_as_json(msg: str, f: Any = None) -> None:
    """Celery's ``safe_say`` as one JSON log line on standard error, where the logs go.

    Called from signal handlers: one ``os.write`` of a line built here, no lock taken.
    """
    record = logging.LogRecord("celery.worker", logging.INFO, __file__, 0, msg, None, None)
    os.write(2, (JsonFormatter().format(record) + "\n").encode())


class Stopped:
    """How Celery's worker ended: its exit code, and the error that stopped it, if any."""

    def __init__(self) -> None:
        self.worker: Any = None
        self.error: str | None = None

    def keep(self, instance: Any = None, **_: Any) -> None:
        self.worker = instance

    def note(self, record: logging.LogRecord) -> bool:
        """Keep what Celery's "Unrecoverable error" line names (the line itself goes on)."""
        if str(record.msg).startswith("Unrecoverable error") and record.exc_info:
            exc = record.exc_info[1]
            self.error = f"{type(exc).__name__}: {exc}"
        return True

    @property
    def exitcode(self) -> int:
        code = getattr(self.worker, "exitcode", None)
        return code if isinstance(code, int) else (1 if self.error else 0)
