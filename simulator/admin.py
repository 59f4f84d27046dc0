"""The simulator's admin routes under ``/_sim``: no authentication, not part of the real API.

- ``GET /_sim/stats``: ``SimulatorState.snapshot()``.
- ``GET /_sim/healthz``: ``{"ok": true}``.
- ``/_sim/script``: ``POST`` a JSON list of fault steps (such as ``["throttle:12", "ok"]``) to
  queue them for the next valid create calls, ``GET`` the queue, ``DELETE`` to empty it. Each
  answers ``{"script": [steps still queued]}``.
- ``/_sim/rate-limit``: ``PUT {"per_s": 50, "burst": 10}`` changes the gateway's rate limit
  while the simulator runs (``"per_s": null`` removes it, a missing ``burst`` means the
  default), ``GET`` shows it. Each answers the limit now in force, ``{"per_s", "burst"}``,
  both null without a limit. In-process, ``SimulatorServer.set_rate_limit`` does the same.

- ``GET /_sim/tasks``: ``{"tasks": [...]}``, every live task (a deleted one leaves it) as
  ``{"project_id", "instance_id", "task_name", "job_id" (its create job; "" for a task a
  configuration check made), "planned" ("syncing" or "failed"; "failed" too for a configured
  task drawn to show an ALTER error), "failure" ("job_failed", "cancelled", "status_no",
  "alter_error" or null; drawn when the task starts), "creates" (calls that created it),
  "name_hits" (create calls and checks that met its name taken), "status", "stage",
  "percentage", "is_need_repair", "is_main_task"}`` (the last five: its list row now). Tasks
  created more than once, deleted ones included, are in ``/_sim/stats``'s
  ``created_more_than_once``.
- ``GET /_sim/list-calls``: ``{"instances": [{"project_id", "instance_id", "times": [...]}]}``,
  the arrival time (the app's monotonic seconds) of every list call of each instance, oldest
  first (calls refused by authentication or validation are not logged).
- ``GET /_sim/job-calls``: the same shape for jobs calls, each logged under the instance of
  the job it asked about; a call about an id the simulator never issued (or another project's)
  is under ``"instance_id": null``.
- ``/_sim/outage`` (a window of 500s on create calls) and ``GET /_sim/create-calls`` (the
  arrival time of every create call) are ``simulator.outage``'s.

A bad body is answered 400 ``DBS.280001`` and changes nothing.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from htap_sync.simulator.errors import INVALID_PARAMETER, error
from htap_sync.simulator.ratelimit import RateLimit, RateLimiter
from htap_sync.simulator.state import SimulatorState
from htap_sync.simulator.validation import InvalidParameter, parse_rate_limit, parse_script


def rate_limit_json(limit: RateLimit | None) -> dict[str, float | int | None]:
    """The limit as ``/_sim/rate-limit`` answers it."""
    if limit is None:
        return {"per_s": None, "burst": None}
    return {"per_s": limit.per_s, "burst": limit.burst}


def admin_routes(state: SimulatorState, rate_limiter: RateLimiter) -> list[Route]:
    """Return the ``/_sim/*`` routes over ``state`` and ``rate_limiter``."""

    async def stats_route(request: Request) -> Response:
        return JSONResponse(state.snapshot())

    async def healthz_route(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def script_route(request: Request) -> Response:
        if request.method == "POST":
            try:
                steps = parse_script(await request.body())
            except InvalidParameter as exc:
                return error(400, INVALID_PARAMETER, str(exc))
            return JSONResponse({"script": state.script(steps)})
        if request.method == "DELETE":
            state.clear_script()
        return JSONResponse({"script": state.scripted()})

    async def rate_limit_route(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse(rate_limit_json(rate_limiter.limit))
        try:
            per_s, burst = parse_rate_limit(await request.body())
            limit = rate_limiter.set_limit(per_s, burst)
        except InvalidParameter as exc:
            return error(400, INVALID_PARAMETER, str(exc))
        except ValueError as exc:  # out of range: the message starts with the field's name
            return error(400, INVALID_PARAMETER, f"Invalid parameter: {exc}")
        return JSONResponse(rate_limit_json(limit))

    async def tasks_route(request: Request) -> Response:
        return JSONResponse({"tasks": state.tasks_report()})

    async def list_calls_route(request: Request) -> Response:
        return JSONResponse({"instances": state.calls.as_json("list")})

    async def job_calls_route(request: Request) -> Response:
        return JSONResponse({"instances": state.calls.as_json("jobs")})

    return [
        Route("/_sim/tasks", tasks_route, methods=["GET"]),
        Route("/_sim/list-calls", list_calls_route, methods=["GET"]),
        Route("/_sim/job-calls", job_calls_route, methods=["GET"]),
        Route("/_sim/stats", stats_route, methods=["GET"]),
        Route("/_sim/healthz", healthz_route, methods=["GET"]),
        Route("/_sim/script", script_route, methods=["GET", "POST", "DELETE"]),
        Route("/_sim/rate-limit", rate_limit_route, methods=["GET", "PUT"]),
    ]
