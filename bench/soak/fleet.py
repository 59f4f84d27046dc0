"""One scenario's processes: a Redis with AOF (or a Sentinel group), the simulator, 3 workers.

Every part is the installed product run as a process on loopback (``python -m htap_sync
simulator`` and ``python -m htap_sync worker``, i.e. ``htap-sync ...``), through devstack's
``Service`` and ``RedisServer``. Faults act on them from outside: SIGKILL a worker, kill -9
Redis and start it again from its AOF, fail the Sentinel group over.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bench.fixtures import TOKEN, child_env, our_env
from htap_sync.devstack import RedisServer, Service, free_port, http_ready, wait_until
from tests.integration.sentinels import MASTER_NAME, SentinelGroup

WORKERS = 3
CONCURRENCY = 8  # the README's example (`htap-sync worker --concurrency 8`)
RATE_PER_S = 10.0
BURST = 10  # README default


class Fleet:
    """Start Redis (or sentinels), the simulator with ``sim_args`` and 3 workers; stop them all.

    Args:
        directory: where the processes' logs and Redis's AOF go (kept for the operator).
        prefix: the scenario's key prefix and queue.
        sim_args: the simulator's fault and lifecycle options.
        sentinel: a master, a replica and 3 sentinels instead of one Redis.
    """

    def __init__(
        self, directory: Path, prefix: str, sim_args: Sequence[str], *, sentinel: bool = False
    ) -> None:
        self.dir = directory
        self.prefix = prefix
        self.sim_args = list(sim_args)
        self.sentinel = sentinel
        self.redis: RedisServer | None = None
        self.group: SentinelGroup | None = None
        self.simulator: Service | None = None
        self.workers: list[Service] = []
        self.sim_url = ""
        self.env: dict[str, str] = {}

    def start(self) -> Fleet:
        """Start every process and wait until Redis and the simulator answer."""
        self.dir.mkdir(parents=True, exist_ok=True)
        redis_url = self._start_redis()
        port = free_port()
        self.sim_url = f"http://127.0.0.1:{port}"
        argv = [sys.executable, "-m", "htap_sync", "simulator", "--host", "127.0.0.1"]
        argv += ["--port", str(port), "--token", TOKEN, *self.sim_args]
        self.simulator = Service("simulator", argv, env=child_env({}), log_dir=self.dir)
        wait_until(self._simulator_up, timeout_s=30, what="simulator")
        self.env = our_env(redis_url, self.sim_url, self.prefix, rate_per_s=RATE_PER_S, burst=BURST)
        if self.group is not None:
            self.env["HTAP_SYNC_REDIS_SENTINELS"] = self.group.addresses
            self.env["HTAP_SYNC_REDIS_SENTINEL_MASTER"] = MASTER_NAME
        for _ in range(WORKERS):
            self.start_worker()
        return self

    def _start_redis(self) -> str:
        if self.sentinel:
            self.group = SentinelGroup(self.dir)  # kept first: stop() then stops what started
            self.group.start()
            return "redis://127.0.0.1:6379/0"  # only its database counts: the sentinels lead
        self.redis = RedisServer(self.dir, appendonly=True)
        self.redis.wait_ready()
        return self.redis.url

    def _simulator_up(self) -> bool:
        assert self.simulator is not None
        if not self.simulator.alive():
            raise RuntimeError(f"simulator exited:\n{self.simulator.log_tail()}")
        return http_ready(f"{self.sim_url}/_sim/healthz")

    def start_worker(self) -> Service:
        """One more ``htap-sync worker`` on the scenario's settings."""
        name = f"worker-{len(self.workers)}"
        argv = [sys.executable, "-m", "htap_sync", "worker", f"--concurrency={CONCURRENCY}"]
        argv += ["--loglevel=INFO", f"--hostname={name}@%h"]
        worker = Service(name, argv, env=child_env(self.env), log_dir=self.dir)
        self.workers.append(worker)
        return worker

    def kill_worker(self) -> None:
        """SIGKILL the first live worker and start a replacement."""
        next(w for w in self.workers if w.alive()).kill()
        self.start_worker()

    def restart_redis(self, down_s: float) -> None:
        """kill -9 Redis, leave it down ``down_s``, start it again on its port from its AOF."""
        assert self.redis is not None
        port = self.redis.port
        self.redis.kill()
        self.redis.stop()
        log = self.redis.log_path
        log.rename(log.with_suffix(".killed.log"))  # the new server writes a log of that name
        time.sleep(down_s)  # the outage itself, not a wait for anything
        self.redis = RedisServer(self.dir, appendonly=True, port=port)
        self.redis.wait_ready(timeout_s=60)

    def failover(self) -> None:
        """``SENTINEL FAILOVER``; returns once the sentinels name the new master."""
        assert self.group is not None
        self.group.failover()

    def sim(self, route: str, *, method: str = "GET", body: Any = None) -> Any:
        """An admin route of the simulator (``/_sim/...``), as JSON."""
        answer = httpx.request(method, f"{self.sim_url}{route}", json=body, timeout=30)
        answer.raise_for_status()
        return answer.json()

    def workers_dead(self) -> list[str]:
        """Workers that exited without being killed on purpose."""
        return [w.name for w in self.workers if not w.alive() and not w.killed]

    def stop(self) -> None:
        """Stop the workers (all signalled at once), the simulator, then Redis."""
        for worker in self.workers:
            if worker.alive():
                worker.process.send_signal(signal.SIGTERM)
        for service in [*self.workers, self.simulator]:
            if service is not None:
                service.stop(timeout_s=10)
        if self.group is not None:
            self.group.stop()
        if self.redis is not None:
            self.redis.stop()
