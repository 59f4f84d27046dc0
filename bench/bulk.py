"""Bulk enqueue throughput: ``Producer.enqueue_many`` against a plain loop of ``apply_async``.

Both queue N create messages on the same redis-server; ours also validates every request and
records its ticket. The figure is the ratio of throughputs, measured in this run.

    python -m bench.bulk [--requests 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.fixtures import settings_from_env
from htap_sync.common.celery_app import CREATE_REPLICATION, make_celery
from htap_sync.common.settings import Settings
from htap_sync.devstack import RedisServer
from htap_sync.producer.api import Producer


def _requests(n: int, tag: str) -> list[dict[str, str]]:
    return [
        {
            "project_id": "0123456789abcdef0123456789abcdef",
            "instance_id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0in17",
            "source_instance_id": "1a2b3c4d5e6f708192a3b4c5d6e7f809in07",
            "source_database": f"db_{i:06d}",
            "target_database": f"db_{i:06d}",
            "task_name": f"{tag}_{i:06d}",
        }
        for i in range(n)
    ]


def _settings(redis_url: str, tag: str) -> Settings:
    """Settings of one run, in a queue and key space of its own (from ``HTAP_SYNC_*``)."""
    env = {"HTAP_SYNC_REDIS_URL": redis_url, "HTAP_SYNC_QUEUE": tag, "HTAP_SYNC_KEY_PREFIX": tag}
    return settings_from_env(env)


def plain_loop(redis_url: str, n: int) -> float:
    """Seconds for N ``apply_async`` calls of the create task (no validation, no tickets)."""
    tag = f"loop{uuid.uuid4().hex[:6]}"
    settings = _settings(redis_url, tag)
    app = make_celery(settings)
    task = app.signature(CREATE_REPLICATION)
    requests = _requests(n, tag)
    started = time.perf_counter()
    for i, request in enumerate(requests):
        task.apply_async(kwargs={"ticket": f"t{i}", "run": "r", "request": request}, queue=tag)
    elapsed = time.perf_counter() - started
    app.close()
    return elapsed


def ours(redis_url: str, n: int) -> float:
    """Seconds for ``enqueue_many`` of N requests: validated, ticketed, queued."""
    tag = f"bulk{uuid.uuid4().hex[:6]}"
    producer = Producer(_settings(redis_url, tag))
    requests = _requests(n, tag)
    started = time.perf_counter()
    accepted = sum(1 for r in producer.enqueue_many(requests) if r.accepted)
    elapsed = time.perf_counter() - started
    # One message per HTAP_SYNC_BATCH_SIZE tickets (one per ticket at 1).
    messages = -(-n // producer.settings.batch_size)
    if accepted != n or producer.queue_depth() != messages:
        raise RuntimeError(f"{accepted} of {n} accepted, {producer.queue_depth()} messages queued")
    producer.close()
    return elapsed


def main(argv: list[str] | None = None) -> int:
    """Run both a few times; print the best of each and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-bulk-") as tmp:
        server = RedisServer(Path(tmp)).wait_ready()
        try:
            loop = min(plain_loop(server.url, args.requests) for _ in range(args.repeat))
            bulk = min(ours(server.url, args.requests) for _ in range(args.repeat))
        finally:
            server.stop()
    n = args.requests
    print(f"{n} requests, best of {args.repeat}")
    print(f"  plain apply_async loop : {n / loop:9.0f} requests/s")
    print(f"  Producer.enqueue_many  : {n / bulk:9.0f} requests/s (validated, ticketed)")
    print(f"  ratio                  : {loop / bulk:9.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
