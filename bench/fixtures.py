"""What every benchmark shares: the simulator's token, the ids, requests, settings, child env."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from htap_sync.common.settings import Settings, load_settings
from htap_sync.simulator import SimulatorConfig, SimulatorServer

TOKEN = "bench-token"
PROJECT = "0123456789abcdef0123456789abcdef"
INSTANCE = "0f1e2d3c4b5a69788796a5b4c3d2e1f0in17"
SOURCE = "1a2b3c4d5e6f708192a3b4c5d6e7f809in07"


def request(name: str) -> dict[str, str]:
    """A valid create request whose databases and task are all called ``name``."""
    return {
        "project_id": PROJECT,
        "instance_id": INSTANCE,
        "source_instance_id": SOURCE,
        "source_database": name,
        "target_database": name,
        "task_name": name,
    }


def tag(kind: str) -> str:
    """A fresh name for one run's queue, key prefix and task names (``[a-z0-9_]``)."""
    return f"{kind}_{uuid.uuid4().hex[:8]}"


def our_env(
    redis_url: str,
    endpoint: str,
    prefix: str,
    *,
    rate_per_s: float,
    burst: int,
    batch_size: int | None = None,
) -> dict[str, str]:
    """``HTAP_SYNC_*`` variables of our producer and workers for one run, in a queue and key
    space of its own. ``batch_size`` sets ``HTAP_SYNC_BATCH_SIZE`` (tickets per message of
    ``enqueue_many``; 1 is the single path); None leaves the product's default.

    Variables, not settings fields: they are the interface that outlives a regrouping of the
    settings object, and the worker processes read nothing else.
    """
    env = {
        "HTAP_SYNC_REDIS_URL": redis_url,
        "HTAP_SYNC_ENDPOINT": endpoint,
        "HTAP_SYNC_AUTH_TOKEN": TOKEN,
        "HTAP_SYNC_KEY_PREFIX": prefix,
        "HTAP_SYNC_QUEUE": prefix,
        "HTAP_SYNC_RATE_LIMIT_PER_S": f"{rate_per_s:g}",
        "HTAP_SYNC_RATE_BURST": str(burst),
    }
    if batch_size is not None:
        env["HTAP_SYNC_BATCH_SIZE"] = str(batch_size)
    return env


def settings_from_env(env: dict[str, str]) -> Settings:
    """The settings a process would build from exactly these ``HTAP_SYNC_*`` variables.

    This process's own ``HTAP_SYNC_*`` variables are set aside while they are read (the
    benchmarks run one thing at a time in their main thread) and put back afterwards.
    """
    saved = {k: v for k, v in os.environ.items() if k.startswith("HTAP_SYNC_")}
    for name in saved:
        del os.environ[name]
    os.environ.update(env)
    try:
        return load_settings(env_file=None)
    finally:
        for name in env:
            os.environ.pop(name, None)
        os.environ.update(saved)


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without any ``HTAP_SYNC_*``/``BENCH_*``, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HTAP_SYNC_", "BENCH_"))}
    env.update(extra)
    return env


@contextmanager
def simulator(latency_ms: int = 0) -> Iterator[SimulatorServer]:
    """An in-process simulator answering every call after ``latency_ms``; stopped on exit."""
    server = SimulatorServer(SimulatorConfig(token=TOKEN, latency_ms=latency_ms))
    server.start()
    try:
        yield server
    finally:
        server.stop()
