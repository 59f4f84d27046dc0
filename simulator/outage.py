"""An outage window: every valid create call answers 500 for a while (soaks and fault drills).

``PUT /_sim/outage`` with ``{"seconds": 20}`` opens a window from now: until it ends, each
create call that passed authentication, validation and the gateway's rate limit is answered
500 ``DBS.108000`` and creates nothing (no fault draw, no scripted step). ``{"seconds": 0}``
ends it at once. ``GET`` shows it. Each answers ``{"remaining_s", "answered"}``: seconds left
(0 when none is open) and how many create calls the windows answered 500 so far.

``GET /_sim/create-calls`` lists the arrival time (the app's monotonic seconds, the clock of
``/_sim/list-calls``) of every create call the rate limit saw: ``{"times": [...],
"admitted": [...]}``, the second without the calls the gateway's own limit throttled.
"""

from __future__ import annotations

import json
import math
import threading

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from htap_sync.simulator.errors import INVALID_PARAMETER, error
from htap_sync.simulator.ratelimit import Monotonic
from htap_sync.simulator.state import SimulatorState
from htap_sync.simulator.validation import InvalidParameter

MAX_OUTAGE_S = 86_400.0


class Outage:
    """A window of 500s on create calls, on the app's monotonic clock; thread-safe."""

    def __init__(self, clock: Monotonic) -> None:
        """No window open; ``clock`` gives monotonic seconds."""
        self._clock = clock
        self._lock = threading.Lock()
        self._until = -math.inf
        self._answered = 0

    def open_for(self, seconds: float) -> None:
        """Answer 500 from now for ``seconds`` (0 ends a window at once)."""
        with self._lock:
            self._until = self._clock() + seconds

    def remaining_s(self) -> float:
        """Seconds left in the window, 0 when none is open."""
        with self._lock:
            return max(0.0, self._until - self._clock())

    def take(self) -> bool:
        """True, and counted, when a create call arriving now falls in the window."""
        with self._lock:
            if self._clock() >= self._until:
                return False
            self._answered += 1
            return True

    def as_json(self) -> dict[str, float | int]:
        """``{"remaining_s", "answered"}``, as ``/_sim/outage`` answers."""
        remaining = self.remaining_s()
        with self._lock:
            return {"remaining_s": round(remaining, 3), "answered": self._answered}


def parse_outage(raw: bytes) -> float:
    """Parse a ``PUT /_sim/outage`` body: ``{"seconds": N}``, ``0 <= N <= 86400``."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidParameter("body", "must be a JSON object") from None
    if not isinstance(body, dict) or set(body) != {"seconds"}:
        raise InvalidParameter("seconds", "required, and the only field")
    seconds = body["seconds"]
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
        raise InvalidParameter("seconds", "must be a number")
    if not 0 <= seconds <= MAX_OUTAGE_S:
        raise InvalidParameter("seconds", f"must be between 0 and {MAX_OUTAGE_S:g}")
    return float(seconds)


def outage_routes(outage: Outage, state: SimulatorState) -> list[Route]:
    """``/_sim/outage`` over ``outage`` and ``/_sim/create-calls`` over ``state``."""

    async def outage_route(request: Request) -> Response:
        if request.method == "PUT":
            try:
                outage.open_for(parse_outage(await request.body()))
            except InvalidParameter as exc:
                return error(400, INVALID_PARAMETER, str(exc))
        return JSONResponse(outage.as_json())

    async def create_calls_route(request: Request) -> Response:
        return JSONResponse(
            {
                "times": state.create_call_times(admitted_only=False),
                "admitted": state.create_call_times(admitted_only=True),
            }
        )

    return [
        Route("/_sim/outage", outage_route, methods=["GET", "PUT"]),
        Route("/_sim/create-calls", create_calls_route, methods=["GET"]),
    ]
