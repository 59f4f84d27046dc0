"""A real Redis Sentinel group on loopback: a master, a replica and three sentinels."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import redis

from htap_sync.devstack import RedisServer, Service, find_redis_server, free_port, wait_until

MASTER_NAME = "htapmaster"
# What the README's Sentinel setup and compose's `ha` profile give every node.
HA_OPTIONS = ["--min-replicas-to-write", "1", "--min-replicas-max-lag", "2"]


class SentinelGroup:
    """Start a master, a replica of it and three sentinels watching them; stop them all.

    Failover is quick on purpose (down after 1 s): tests fail over on demand with
    ``SENTINEL FAILOVER`` or by killing the master. Each node runs as the README's HA setup
    says: ``min-replicas-to-write 1`` with a small ``min-replicas-max-lag``, so a master cut
    off from its replica (an old master after a promotion) stops taking writes it would lose.
    """

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.nodes: list[RedisServer] = []
        self.sentinels: list[Service] = []
        self.sentinel_ports: list[int] = []

    def start(self) -> SentinelGroup:
        """Start every process and wait until the sentinels see the master and its replica."""
        for name in ("node-a", "node-b"):
            (self.dir / name).mkdir()
        master = RedisServer(self.dir / "node-a", appendonly=True, extra=HA_OPTIONS).wait_ready()
        replica = RedisServer(
            self.dir / "node-b",
            appendonly=True,
            extra=[*HA_OPTIONS, "--replicaof", "127.0.0.1", str(master.port)],
        ).wait_ready()
        self.nodes = [master, replica]
        for n in range(3):
            port = free_port()
            conf = self.dir / f"sentinel-{n}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master.port} 2\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
                f"sentinel failover-timeout {MASTER_NAME} 4000\n"
                f"sentinel parallel-syncs {MASTER_NAME} 1\n"
            )
            argv = [find_redis_server(), str(conf), "--sentinel"]
            self.sentinels.append(Service(f"sentinel-{n}", argv, log_dir=self.dir))
            self.sentinel_ports.append(port)
        wait_until(self._replica_in_sync, timeout_s=30, what="replica")
        wait_until(self._sentinels_see_replica, timeout_s=30, what="sentinels")
        # min-replicas-to-write 1: the master takes writes once it counts its replica good
        # (acknowledged within the lag), a moment after the link is up.
        wait_until(lambda: self._good_replicas(self.master_port()), timeout_s=30, what="writes")
        return self

    @property
    def addresses(self) -> str:
        """HTAP_SYNC_REDIS_SENTINELS for this group."""
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def sentinel(self, n: int = 0) -> redis.Redis:
        """A client of one sentinel."""
        return redis.Redis(port=self.sentinel_ports[n], decode_responses=True)

    def master_port(self) -> int:
        """The port of the master the sentinels name now."""
        address: Any = self.sentinel().sentinel_get_master_addr_by_name(MASTER_NAME)
        return int(address[1])

    def node(self, port: int) -> RedisServer:
        """The node listening on ``port``."""
        return next(n for n in self.nodes if n.port == port)

    def _replica_in_sync(self) -> bool:
        info = redis.Redis(port=self.nodes[1].port).info("replication")
        return info.get("master_link_status") == "up"

    def _sentinels_see_replica(self) -> bool:
        try:
            return all(len(self.sentinel(n).sentinel_slaves(MASTER_NAME)) >= 1 for n in range(3))
        except redis.RedisError:
            return False

    def _good_replicas(self, port: int) -> bool:
        """The master on ``port`` counts a replica good (it would take a write now)."""
        try:
            info = redis.Redis(port=port).info("replication")
        except redis.RedisError:
            return False
        return int(info.get("min_slaves_good_slaves", info.get("connected_slaves", 0))) >= 1

    def _promotable(self) -> bool:
        """The sentinel that will lead sees a replica it can promote: linked, not down."""
        try:
            replicas: list[dict[str, Any]] = self.sentinel().sentinel_slaves(MASTER_NAME)
        except redis.RedisError:
            return False
        return any(
            r.get("master-link-status") == "ok"
            and not r.get("is_sdown")
            and not r.get("is_disconnected")
            for r in replicas
        )

    def failover(self) -> int:
        """``SENTINEL FAILOVER``, as an operator runs it: once a replica can be promoted, and
        again when the sentinels gave an attempt up (a promotion past the failover timeout
        is aborted, and a manual failover is not retried by the sentinels themselves); returns
        the new master's port once the sentinels name it."""
        old = self.master_port()
        deadline = time.monotonic() + 60
        while True:
            wait_until(self._promotable, timeout_s=30, what="a replica to promote")
            with contextlib.suppress(redis.ResponseError):  # INPROG: one is under way
                self.sentinel().execute_command("SENTINEL", "FAILOVER", MASTER_NAME)  # type: ignore[no-untyped-call]
            try:
                wait_until(lambda: self.master_port() != old, timeout_s=15, what="failover")
                return self.master_port()
            except TimeoutError:
                if time.monotonic() >= deadline:
                    raise

    def restart(self, port: int) -> RedisServer:
        """Start a stopped (killed) node again on its port and data; the sentinels make it a
        replica of the master they name now."""
        old = self.node(port)
        old.stop()  # reaps the killed process and closes its log
        directory = self.dir / ("node-a" if old is self.nodes[0] else "node-b")
        again = RedisServer(directory, appendonly=True, port=port, extra=HA_OPTIONS).wait_ready()
        self.nodes[self.nodes.index(old)] = again
        return again

    def stop(self) -> None:
        """Stop the sentinels, then the nodes."""
        for service in [*self.sentinels, *self.nodes]:
            service.stop()
