"""The ingress's request middleware: an id on every answer, counted, timed and logged by route.

The id is the caller's own ``X-Request-Id`` when it looks like an id (so one id follows a call
through the caller's logs and ours), else a new one. The log line of an answer carries what
the handler put in ``request.state`` (a POST's or GET's ``ticket``, a list's counts)."""

from __future__ import annotations

import logging
import re
import time
import uuid

from prometheus_client import Counter, Histogram
from starlette.datastructures import MutableHeaders
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from htap_sync.producer.ingress_models import REQUEST_ID_PATTERN
from htap_sync.producer.problems import Problem

logger = logging.getLogger("htap_sync.producer.ingress")

REQUEST_ID = "X-Request-Id"
REQUESTS = Counter(
    "htap_sync_ingress_requests_total",
    "Ingress answers by method, route (its path template, 'unmatched' for none) and status.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "htap_sync_ingress_latency_seconds", "Ingress answer time.", ["method", "route"]
)
# What the README's metrics table lists for the ingress.
METRICS = (REQUESTS, LATENCY)


_USABLE_ID = re.compile(REQUEST_ID_PATTERN)
_REQUEST_ID_HEADER = REQUEST_ID.lower().encode()
# What a handler may leave in request.state for the answer's log line.
_LOGGED_STATE = ("ticket", "accepted", "rejected")


def route_of(scope: Scope) -> str:
    """The path template of the route a request went to (``unmatched`` for none).

    A template, never the path itself, so that ticket ids do not become metric labels. The
    API's routes name themselves in the scope; the others (``/docs``, ``/openapi.json``,
    ``/metrics``) and unknown paths are matched against the app's routes here.
    """
    route = scope.get("route")
    if route is None:
        for candidate in getattr(scope.get("app"), "routes", ()):
            match, _ = candidate.matches(scope)
            if match is not Match.NONE:
                route = candidate
                break
    return str(getattr(route, "path", "unmatched"))


def request_id_of(scope: Scope) -> str:
    """The caller's ``X-Request-Id`` when it looks like an id, else a new one."""
    for name, value in scope.get("headers", ()):  # raw header pairs: no Headers object built
        if name.lower() == _REQUEST_ID_HEADER:
            given = value.decode("latin-1")
            return given if _USABLE_ID.match(given) else uuid.uuid4().hex
    return uuid.uuid4().hex


class RequestIds:
    """ASGI middleware: an ``X-Request-Id`` on every answer, and JSON even for a crash.

    Every answer is counted and timed by route, and logged with its request id.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request, stamping its answer with its id."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        started = False
        begun = time.monotonic()

        async def stamped(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message)[REQUEST_ID] = request_id
                _answered(scope, int(message["status"]), request_id, begun)
            await send(message)

        try:
            await self.app(scope, receive, stamped)
        except Exception:
            # Never a traceback to the caller; the log keeps it, findable by the request id.
            logger.exception("ingress request %s failed", request_id)
            if started:
                raise
            problem = Problem(500, "server", f"internal error (request id {request_id})")
            await problem.response()(scope, receive, stamped)


def _answered(scope: Scope, status: int, request_id: str, begun: float) -> None:
    """Count, time and log one answer (in place of uvicorn's access log, with the id)."""
    method = str(scope.get("method", ""))
    route = route_of(scope)
    state = scope.get("state") or {}
    took_s = time.monotonic() - begun
    REQUESTS.labels(method, route, str(status)).inc()
    LATENCY.labels(method, route).observe(took_s)
    if not logger.isEnabledFor(logging.INFO):
        return
    logger.info(
        "%s %s %d",
        method,
        scope.get("path", ""),
        status,
        extra={
            "request_id": request_id,
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(took_s * 1000, 1),
            **{k: state[k] for k in _LOGGED_STATE if k in state},
        },
    )
