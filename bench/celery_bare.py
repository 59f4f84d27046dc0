"""The reference: a bare Celery task with Celery's own ``rate_limit``, posting to the simulator.

Configured from BENCH_* variables by the benchmark that starts its workers (bench code only).
With ``BENCH_RESULT_BACKEND`` (a Redis URL) each task stores its result there, as ours records
its outcome in Redis; without it the result is dropped.
"""

from __future__ import annotations

import os

import httpx
from celery import Celery

app = Celery("bench_bare", broker=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:1/0"))
_BACKEND = os.environ.get("BENCH_RESULT_BACKEND")
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_backend=_BACKEND,
    task_ignore_result=not _BACKEND,
)
_client: httpx.Client | None = None
RATE = os.environ.get("BENCH_RATE", "10/s")


@app.task(name="bench.bare_create", rate_limit=RATE, acks_late=True)
def bare_create(path: str, body: dict[str, str]) -> int:
    """POST one create call, as simply as a team would write it."""
    global _client
    if _client is None:
        _client = httpx.Client(
            base_url=os.environ["BENCH_ENDPOINT"],
            headers={"X-Auth-Token": os.environ["BENCH_TOKEN"]},
            timeout=30,
        )
    return _client.post(path, json=body).status_code
