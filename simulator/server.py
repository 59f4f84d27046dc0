"""Run the simulator: blocking for the CLI, or in a background thread for tests and benchmarks."""

from __future__ import annotations

import socket
import sys
import threading
import time
from types import TracebackType
from typing import Any, Self

import httpx
import uvicorn
from starlette.applications import Starlette
from uvicorn.config import LOGGING_CONFIG

from htap_sync.simulator.app import make_app
from htap_sync.simulator.auth import Clock
from htap_sync.simulator.config import SimulatorConfig
from htap_sync.simulator.faults import Hangs
from htap_sync.simulator.ratelimit import Monotonic, RateLimit, RateLimiter
from htap_sync.simulator.state import SimulatorState

LOOPBACK = "127.0.0.1"
_POLL_INTERVAL_S = 0.01


def _uvicorn_config(
    app: Starlette,
    *,
    host: str = LOOPBACK,
    port: int = 0,
    log_config: dict[str, Any] | None = LOGGING_CONFIG,
) -> uvicorn.Config:
    # ws="none": the simulator speaks plain HTTP, and importing a websockets backend can emit
    # DeprecationWarnings that the test suite turns into errors.
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=log_config,
        log_level="warning",
        access_log=False,
        ws="none",
        lifespan="off",
    )


class _Server(uvicorn.Server):
    """A uvicorn server that ends hang faults when it shuts down.

    uvicorn waits for every running request before it exits; a request held by a 30 s hang
    would hold the shutdown that long.
    """

    def __init__(self, config: uvicorn.Config, hangs: Hangs, *, announce: bool = False) -> None:
        super().__init__(config)
        self._hangs = hangs
        self._announce = announce

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start serving; with ``announce``, say where on standard error (uvicorn's own line
        is below the simulator's log level)."""
        await super().startup(sockets)
        if self._announce and self.started:
            for server in self.servers:
                for sock in server.sockets:
                    host, port = sock.getsockname()[:2]
                    shown = f"[{host}]" if ":" in host else host
                    sys.stderr.write(f"simulator listening on http://{shown}:{port}\n")
            sys.stderr.flush()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # Held requests then answer at once (the connection closes after the answer), and any
        # hang that starts later returns immediately.
        self._hangs.release()
        await super().shutdown(sockets)


def serve(config: SimulatorConfig, host: str, port: int) -> None:
    """Serve a fresh simulator until interrupted (blocking; for the CLI).

    Args:
        config: What the simulator checks and which faults it injects.
        host: Interface to bind, e.g. ``127.0.0.1`` or ``0.0.0.0`` in a container.
        port: TCP port to bind.
    """
    hangs = Hangs()
    app = make_app(config, SimulatorState(), hangs=hangs)
    _Server(_uvicorn_config(app, host=host, port=port), hangs, announce=True).run()


class SimulatorServer:
    """A simulator on a free loopback port, served by uvicorn in a background thread.

    Use it as a context manager::

        with SimulatorServer(SimulatorConfig(ak="AK", sk="SK")) as server:
            httpx.get(f"{server.url}/_sim/healthz")
            assert server.state.created == 0

    The gateway's rate limit starts as the config's and can be changed at any time, running
    or not, with ``set_rate_limit`` (it keeps its buckets across a stop and a start).
    """

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        state: SimulatorState | None = None,
        port: int = 0,
        clock: Clock | None = None,
        monotonic: Monotonic | None = None,
        startup_timeout_s: float = 10.0,
        shutdown_timeout_s: float = 10.0,
    ) -> None:
        """Prepare, without starting.

        Args:
            config: Simulator settings; defaults to no auth and no faults.
            state: Store to use; defaults to a fresh one (read it back via ``.state``).
            port: Loopback port; 0 picks a free one.
            clock: Current time (aware datetime) for signature dates and IAM token expiry;
                defaults to the real UTC time. A test advances its own to expire tokens.
            monotonic: Monotonic seconds for the rate limit, task stages, jobs and call logs;
                defaults to ``time.monotonic``. A test steps its own to move stages on.
            startup_timeout_s: How long ``start`` waits for the server to answer.
            shutdown_timeout_s: How long ``stop`` waits for a graceful, then a forced, exit.
        """
        self.config = config or SimulatorConfig()
        self.state = state or SimulatorState()
        self.rate_limiter = RateLimiter(self.config.rate_limit(), clock=monotonic)
        self._requested_port = port
        self._clock = clock
        self._startup_timeout_s = startup_timeout_s
        self._shutdown_timeout_s = shutdown_timeout_s
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The bound port.

        Raises:
            RuntimeError: The server is not running.
        """
        if self._port is None:
            raise RuntimeError("SimulatorServer is not running")
        return self._port

    @property
    def rate_limit(self) -> RateLimit | None:
        """The gateway's rate limit in force, None when create calls are not limited."""
        return self.rate_limiter.limit

    def set_rate_limit(self, per_s: float | None, burst: int | None = None) -> None:
        """Change the gateway's rate limit from now on; thread-safe.

        Same as ``PUT /_sim/rate-limit``. Each project's bucket keeps the tokens it has, capped
        to the new burst, and refills at the new rate (see ``simulator.ratelimit``).

        Args:
            per_s: Create calls a second per project; None removes the limit.
            burst: Bucket size; None means ``max(1, ceil(per_s))``.

        Raises:
            ValueError: Out of range; the limit stays as it was.
        """
        self.rate_limiter.set_limit(per_s, burst)

    @property
    def url(self) -> str:
        """Base URL, ``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> None:
        """Bind, start serving and return once the server answers ``/_sim/healthz``.

        Raises:
            RuntimeError: Already started, or the server thread died during startup.
            TimeoutError: It did not answer within ``startup_timeout_s``.
        """
        if self._thread is not None:
            raise RuntimeError("SimulatorServer already started")
        # Binding here (not in uvicorn) gives the real port before the thread starts, so
        # port=0 needs no guess-and-retry.
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP.
        # Without it every answer after the first on a keep-alive connection waits ~40 ms for
        # a delayed ACK (Nagle), which halves any throughput measured through the simulator.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # As uvicorn does: lets a test restart a simulator on the port it just stopped (the old
        # connections sit in TIME_WAIT); Linux still refuses a port someone is listening on.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, self._requested_port))
        except OSError:
            sock.close()
            raise
        self._socket = sock
        self._port = sock.getsockname()[1]
        hangs = Hangs()
        app = make_app(
            self.config,
            self.state,
            clock=self._clock,
            hangs=hangs,
            rate_limiter=self.rate_limiter,
        )
        # log_config=None: leave the host process's logging configuration alone.
        self._server = _Server(_uvicorn_config(app, log_config=None), hangs)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name=f"simulator-{self._port}",
            daemon=True,
        )
        self._thread.start()
        try:
            self._wait_until_answering(self._thread)
        except BaseException:
            self.stop()
            raise

    def _wait_until_answering(self, thread: threading.Thread) -> None:
        deadline = time.monotonic() + self._startup_timeout_s
        # trust_env=False: a proxy from the environment must not intercept loopback.
        with httpx.Client(base_url=self.url, timeout=1.0, trust_env=False) as client:
            while True:
                try:
                    if client.get("/_sim/healthz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass  # not listening yet
                if not thread.is_alive():
                    raise RuntimeError("simulator server thread exited during startup")
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"simulator did not answer within {self._startup_timeout_s} s"
                    )
                # Waiting on the thread doubles as the poll interval and wakes early if it dies.
                thread.join(timeout=_POLL_INTERVAL_S)

    def stop(self) -> None:
        """Stop serving and release the port; safe to call twice.

        Raises:
            RuntimeError: The server thread did not exit within twice ``shutdown_timeout_s``.
        """
        server, thread, sock = self._server, self._thread, self._socket
        self._server = self._thread = self._socket = None
        self._port = None
        if server is not None:
            server.should_exit = True
        try:
            if thread is not None:
                thread.join(timeout=self._shutdown_timeout_s)
                if thread.is_alive() and server is not None:
                    # Open keep-alive connections or stuck handlers: stop waiting for them.
                    server.force_exit = True
                    thread.join(timeout=self._shutdown_timeout_s)
                if thread.is_alive():
                    raise RuntimeError("simulator server thread did not stop")
        finally:
            if sock is not None:
                sock.close()

    def __enter__(self) -> Self:
        """Start the server and return it."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()
