"""Worker processes for the benchmarks, ours and bare Celery, and their CPU time and memory."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.fixtures import TOKEN, child_env
from htap_sync.devstack import Service
from htap_sync.simulator import SimulatorServer

# Both kinds of worker log at WARNING: a benchmark of the task, not of the log file.
LOGLEVEL = "WARNING"
# The last acknowledgements land just after the last ticket is recorded: count them too.
SETTLE_S = 0.25


@dataclass(frozen=True)
class Usage:
    """CPU seconds (user + system) and resident memory of a process and its children."""

    cpu_s: float
    rss_bytes: int

    def __sub__(self, earlier: Usage) -> Usage:
        """CPU spent since ``earlier``; the memory is this one's."""
        return Usage(self.cpu_s - earlier.cpu_s, self.rss_bytes)


def usage(pid: int) -> Usage:
    """What the process ``pid`` and its live children use now (prefork children included)."""
    root = psutil.Process(pid)
    cpu = 0.0
    rss = 0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
            cpu += times.user + times.system
            rss += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue  # a child that ended between the listing and the reading
    return Usage(cpu, rss)


def created(sim: SimulatorServer, worker: Service, target: int) -> bool:
    """True once the simulator created ``target`` tasks; RuntimeError if the worker died."""
    if not worker.alive():
        raise RuntimeError(f"{worker.name} exited:\n{worker.log_tail()}")
    return sim.state.created >= target


def _python(counts: Path | None) -> list[str]:
    """The interpreter, wrapped in ``bench.redis_count`` when its Redis traffic is counted."""
    if counts is None:
        return [sys.executable]
    return [sys.executable, "-m", "bench.redis_count", str(counts), "--"]


def our_worker(
    name: str,
    env: dict[str, str],
    logs: Path,
    *,
    concurrency: int,
    pool: str = "threads",
    counts: Path | None = None,
) -> Service:
    """``htap-sync worker`` on the ``HTAP_SYNC_*`` variables ``env`` (queue, Redis, endpoint).

    With ``counts``, its Redis commands and round trips are written there (``bench.redis_count``).
    """
    argv = [*_python(counts), "-m", "htap_sync", "worker", f"--concurrency={concurrency}"]
    argv += [f"--pool={pool}", f"--loglevel={LOGLEVEL}", f"--hostname={name}@%h"]
    return Service(name, argv, env=child_env(env), log_dir=logs)


def bare_worker(
    name: str,
    *,
    redis_url: str,
    endpoint: str,
    queue: str,
    rate: str,
    logs: Path,
    concurrency: int,
    pool: str = "threads",
    result_backend: bool = False,
    counts: Path | None = None,
) -> Service:
    """The bare Celery worker of ``bench.celery_bare``, with the flags ours runs with.

    ``result_backend`` stores each task's result in ``redis_url`` (Celery's Redis backend).
    """
    argv = [*_python(counts), "-m", "celery", "-A", "bench.celery_bare", "worker", "-Q", queue]
    argv += [f"--concurrency={concurrency}", f"--pool={pool}", f"--loglevel={LOGLEVEL}"]
    argv += [f"--hostname={name}@%h", "--without-gossip", "--without-mingle"]
    env = {
        "BENCH_REDIS_URL": redis_url,
        "BENCH_ENDPOINT": endpoint,
        "BENCH_TOKEN": TOKEN,
        "BENCH_RATE": rate,
    }
    if result_backend:
        env["BENCH_RESULT_BACKEND"] = redis_url
    return Service(name, argv, env=child_env(env), log_dir=logs)
