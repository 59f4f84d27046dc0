"""Starts a Celery worker for the create task (what ``htap-sync worker`` runs)."""

from __future__ import annotations

import os
import tempfile
from typing import Literal

from htap_sync.common.connections import make_redis
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
) -> None:
    """Run a worker in the foreground until it is told to stop (SIGTERM: warm shutdown).

    Threads are the default pool: the work is waiting on HTTP, not computing.

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

    app = make_worker_app(settings, loglevel=loglevel, concurrency=concurrency)
    client = make_redis(settings)
    try:
        # Connecting selects the database: one the server lacks fails here (exit 78), not in
        # Celery's endless reconnect loop (the check below reads CONFIG and would only warn).
        client.ping()
        check_eviction_policy(client, allow_evicting=settings.redis.allow_evicting)
    finally:
        client.close()
    argv = [
        "worker",
        f"--concurrency={concurrency}",
        f"--pool={pool}",
        f"--loglevel={loglevel}",
        f"--queues={settings.queue}",
        "--without-gossip",
        "--without-mingle",
    ]
    if hostname:
        argv.append(f"--hostname={hostname}")
    app.worker_main(argv)
