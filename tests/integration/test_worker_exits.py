"""A real worker stopped by an error Celery cannot recover from exits non-zero, its last line
saying why (Celery's own worker_main drops the exit code: a supervisor read a clean stop)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from htap_sync.common.settings import Settings
from htap_sync.devstack import RedisServer
from tests.integration.test_cli import htap_sync


@pytest.mark.parametrize("log_format", ["text", "json"])
@pytest.mark.timeout(120)
def test_a_worker_refused_its_queue_exits_1_with_one_line(
    tmp_path: Path, settings: Settings, log_format: str
) -> None:
    """A Redis user that may not BRPOP: the consumer's unrecoverable error ends the worker
    with exit 1, and its last line names the error (a JSON line with JSON logs)."""
    server = RedisServer(tmp_path).wait_ready()
    try:
        admin = redis.Redis.from_url(server.url)
        admin.acl_setuser(
            "limited",
            enabled=True,
            passwords=["+pw"],
            commands=["+@all", "-brpop"],
            keys=["*"],
            channels=["*"],
        )
        admin.close()
        url = f"redis://limited:pw@127.0.0.1:{server.port}/0"
        env = {"HTAP_SYNC_REDIS_URL": url, "HTAP_SYNC_LOG_FORMAT": log_format}
        ran = htap_sync(settings, "worker", "--concurrency", "1", env=env, timeout_s=90)
    finally:
        server.stop()
    assert ran.returncode == 1, ran.stderr[-3000:]
    last = ran.stderr.strip().splitlines()[-1]
    if log_format == "json":
        assert all(json.loads(line) for line in ran.stderr.splitlines())
        last = json.loads(last)["msg"]
    else:
        last = last.removeprefix("error: ")
    assert last.startswith("the worker stopped on NoPermissionError"), last
