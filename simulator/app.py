"""The simulated TaurusDB HTAP endpoint: the create and list sync-task routes plus admin routes.

Answers follow taurus-api.md where it documents them. Where the real service is undocumented,
these are the simulator's own choices (a client must classify by HTTP status, not by code):

==========================================  ======  ==============  ==========================
situation                                   status  error_code      documented?
==========================================  ======  ==============  ==========================
bad path id, body, field or query value     400     DBS.280001      code is the simulator's
instance in ``unknown_instances``           400     DBS.200022      yes (create page example)
``task_name`` already exists on instance    409     DBS.280005      no: ``existing_name``
                                                                    chooses 409, 400 or 200
missing or wrong credentials                401     APIGW.0301      yes (gateway)
expired IAM token                           401     APIGW.0301      yes (gateway)
no such route or method                     404     APIGW.0101      gateway's usual answer
fault ``fail`` or ``created_then_500``      500     DBS.108000      yes (general error table)
fault ``hang``, once ``hang_ms`` is over    500     DBS.108000      yes (general error table)
an outage window (``simulator.outage``)     500     DBS.108000      yes (general error table)
fault ``throttle``                          429     APIGW.0308      yes; ``Retry-After`` is not
                                                                    documented (sent by default)
over the rate limit (``rate_limit_per_s``)  429     APIGW.0308      yes; ``Retry-After`` (>= 1 s)
                                                                    is the simulator's choice
fault ``in_progress``                       409     DBS.200047      yes (one of three codes)
fault ``drop_after_create``                 none: the connection closes without any answer
fault ``hang_after_create``                 what the call got (200 or 409), after the hang
==========================================  ======  ==============  ==========================

Both the path's HTAP instance and the body's ``source_instance_id`` are looked up in
``unknown_instances``. A create call is checked in this order: authentication, path and body,
unknown instance, the gateway's rate limit, then one fault (the next scripted step, else the
seeded draw), then the duplicate-name check; so neither the rate limit nor a fault hides a 4xx.

``fail``, ``hang``, ``throttle`` and ``in_progress`` replace the call: nothing is created.
``created_then_500``, ``drop_after_create`` and ``hang_after_create`` let the call do its work
first (create the task, or find the name taken) and then lose, or delay, its answer: the client
cannot tell which. Every response carries an ``X-Request-Id`` header.

The rate limit (``simulator.ratelimit``: a token bucket per project, changeable at run time)
sits after the 4xx checks although the real gateway throttles before the service sees the
body: so a client's permanent error is never masked as a retryable 429, and only valid calls
count towards the rate. Every call that reaches it is logged with its arrival time
(``SimulatorState.create_call_times``). A call it throttles creates nothing, gets
``Retry-After`` = the whole seconds until the project's next token (at least 1), is counted in
``throttled_by_limit`` (not among the faults), and neither draws from the seeded fault RNG nor
takes a scripted step: the seeded faults and the script apply to admitted calls only, in order,
however many calls the limit throttled in between. The configured latency is added before
any of these checks, so a throttled call is delayed like any other.

Tokens: ``X-Auth-Token`` may be the config's static ``token`` or one issued by the IAM login
route ``POST /v3/auth/tokens`` (``simulator.iam``, served when an IAM account is configured)
until it expires; an expired one gets 401 ``APIGW.0301`` "Incorrect IAM authentication
information: token expired" (counted in ``expired_token_rejections``). Expiry follows the
injected ``clock``.

Where a created task goes next (stages, jobs, failures to sync) is ``simulator.lifecycle``;
the jobs, configuration, delete, pause and resume routes are ``simulator.task_routes``; the
configuration checks, modify, configuration by database, parameters and databases routes are
``simulator.config_routes``. A create call naming a configured task (made by a check) that
waits to be started, with the same databases, starts it: 200 with a job id, no new task.
Admin routes (``/_sim/*``, no authentication) are described in ``simulator.admin``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from htap_sync.simulator.admin import admin_routes
from htap_sync.simulator.auth import Authenticator, Clock, utc_now
from htap_sync.simulator.config import SimulatorConfig
from htap_sync.simulator.config_routes import config_routes
from htap_sync.simulator.drop import DropConnection, DroppingStarlette
from htap_sync.simulator.errors import (
    AUTH_FAILED,
    INSTANCE_NOT_FOUND,
    INVALID_PARAMETER,
    NO_SUCH_API,
    OPERATION_IN_PROGRESS,
    TASK_NAME_EXISTS,
    error,
    internal_error,
    throttled,
)
from htap_sync.simulator.faults import CreateFault, Faults, FaultStep, Hangs, Sleep
from htap_sync.simulator.iam import iam_routes
from htap_sync.simulator.lifecycle import START_JOB, Lifecycle
from htap_sync.simulator.outage import Outage, outage_routes
from htap_sync.simulator.ratelimit import Monotonic, RateLimiter
from htap_sync.simulator.state import SimulatorState, Task
from htap_sync.simulator.task_routes import task_routes
from htap_sync.simulator.validation import (
    MAX_LIMIT,
    CreateBody,
    InvalidParameter,
    parse_create_body,
    path_ids,
    query_int,
)

REPLICATION_PATH = "/v3/{project_id}/instances/{instance_id}/starrocks/databases/replication"


def _header_text(value: str) -> str:
    # ASGI servers hand headers over as latin-1; the SDK signs the UTF-8 text they encode.
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


class _RequestIdMiddleware:
    """Adds an ``X-Request-Id`` (uuid4 hex) to every HTTP response, errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("X-Request-Id", request_id)
            await send(message)

        await self._app(scope, receive, send_with_id)


async def _no_such_api(request: Request, exc: Exception) -> Response:
    # The gateway matches method and path together: a wrong method is just another unknown API.
    return error(404, NO_SUCH_API, "The API does not exist or has not been published.")


def make_app(
    config: SimulatorConfig,
    state: SimulatorState,
    *,
    clock: Clock | None = None,
    sleep: Sleep | None = None,
    hangs: Hangs | None = None,
    monotonic: Monotonic | None = None,
    rate_limiter: RateLimiter | None = None,
) -> Starlette:
    """Build the simulator's ASGI app.

    Args:
        config: Credentials to accept, unknown instances and faults.
        state: Store the app writes tasks and counters to, and reads the fault script from;
            the caller keeps it to inspect.
        clock: Current time (aware datetime) for the ``X-Sdk-Date`` check and for issuing and
            expiring IAM tokens; tests inject one.
        sleep: Awaitable sleep used for ``latency_ms`` and hangs; tests inject one.
        hangs: Where hang faults hold requests; the server passes one to release them when it
            shuts down.
        monotonic: Monotonic seconds for the rate limit, the arrival times, task stages, jobs
            and the call logs; defaults to ``time.monotonic`` (tests inject one). Only used
            without ``rate_limiter``.
        rate_limiter: The gateway's rate limit, whose clock is then used for all of those; the
            server passes
            one to change it at run time. Defaults to one built from ``config``.

    Returns:
        A Starlette app with the create, list, IAM login and ``/_sim/*`` admin routes.
    """
    if rate_limiter is not None and monotonic is not None:
        raise ValueError("monotonic: give it to the RateLimiter passed as rate_limiter")
    limiter = rate_limiter or RateLimiter(config.rate_limit(), clock=monotonic)
    sim = _Simulator(
        config,
        state,
        authenticator=Authenticator(config, clock=clock or utc_now, tokens=state.tokens),
        faults=Faults(config, sleep=sleep, hangs=hangs),
        limiter=limiter,
        # One clock for rate limit, stages, jobs and call logs: their times compare.
        lifecycle=_lifecycle(config, limiter.clock),
        outage=Outage(limiter.clock),
    )
    state.lifecycle = sim.lifecycle
    routes = [
        Route(REPLICATION_PATH, sim.create_route, methods=["POST"]),
        Route(REPLICATION_PATH, sim.list_route, methods=["GET"]),
        *task_routes(state, sim.lifecycle, sim.guard),
        *config_routes(state, sim.lifecycle, sim),
        *iam_routes(config, state.tokens, clock or utc_now),
        *admin_routes(state, sim.limiter),
        *outage_routes(sim.outage, state),
    ]
    return DroppingStarlette(
        routes=routes,
        middleware=[Middleware(_RequestIdMiddleware)],
        exception_handlers={404: _no_such_api, 405: _no_such_api},
    )


def _lifecycle(config: SimulatorConfig, clock: Monotonic) -> Lifecycle:
    return Lifecycle(
        wait_s=config.stage_wait_s,
        full_s=config.stage_full_s,
        fail_rate=config.sync_fail_rate,
        job_delay_s=config.job_appear_delay_s,
        seed=config.seed,
        clock=clock,
        alter_error_rate=config.alter_error_rate,
        op_job_s=config.op_job_s,
    )


class _Simulator:
    """The create and list routes of one simulator, over its state and its injected parts."""

    def __init__(
        self,
        config: SimulatorConfig,
        state: SimulatorState,
        *,
        authenticator: Authenticator,
        faults: Faults,
        limiter: RateLimiter,
        lifecycle: Lifecycle,
        outage: Outage,
    ) -> None:
        self.config = config
        self.state = state
        self.authenticator = authenticator
        self.faults = faults
        self.limiter = limiter
        self.lifecycle = lifecycle
        self.outage = outage

    async def auth_failure(self, request: Request, body: bytes) -> Response | None:
        if not self.authenticator.enabled:
            return None
        reason = self.authenticator.failure(
            method=request.method,
            path=request.scope["path"],
            query_string=request.scope["query_string"],
            headers={name: _header_text(value) for name, value in request.headers.items()},
            body=body,
        )
        if reason is None:
            return None
        return error(401, AUTH_FAILED, f"Incorrect IAM authentication information: {reason}")

    def unknown_instance(self, *instance_ids: str) -> Response | None:
        if any(i in self.config.unknown_instances for i in instance_ids):
            return error(400, INSTANCE_NOT_FOUND, "Instance not found.")
        return None

    def create(self, project_id: str, instance_id: str, body: CreateBody) -> Response:
        task = Task(
            project_id=project_id,
            instance_id=instance_id,
            task_name=body.task_name,
            source_instance_id=body.source_instance_id,
            source_node_id=body.source_node_id,
            source_database=body.source_database,
            target_database=body.target_database,
            job_id=uuid.uuid4().hex,
        )
        if self.state.create_task(task):
            self.lifecycle.born(task.key, task.job_id)
            return JSONResponse({"job_id": task.job_id})
        if self.starts(task):
            return JSONResponse({"job_id": task.job_id})
        self.state.record_name_hit(task.key)
        if self.config.existing_name == "accept":
            # As the provider uses it: starting an existing task answers a job id.
            return JSONResponse({"job_id": self.lifecycle.job_for(task.key, START_JOB)})
        status = 400 if self.config.existing_name == "reject-400" else 409
        return error(status, TASK_NAME_EXISTS, "Task name already exists.")

    def starts(self, task: Task) -> bool:
        """Start the configured task of that name and databases, waiting to be started."""
        found = self.state.task(*task.key)
        if (
            found is None
            or found.job_id
            or (found.source_database, found.target_database)
            != (
                task.source_database,
                task.target_database,
            )
        ):
            return False
        return self.lifecycle.start(task.key, task.job_id)

    async def with_fault(self, step: FaultStep, create_now: Callable[[], Response]) -> Response:
        fault = step.fault
        if fault is CreateFault.FAIL:
            return internal_error()
        if fault is CreateFault.THROTTLE:
            retry_after_s = (
                self.config.retry_after_s if step.retry_after_s is None else step.retry_after_s
            )
            return throttled(retry_after_s)
        if fault is CreateFault.IN_PROGRESS:
            return error(409, OPERATION_IN_PROGRESS, "Another operation is in progress.")
        if fault is CreateFault.HANG:
            await self.faults.hang(step)
            return internal_error()
        answer = create_now()
        if fault is CreateFault.CREATED_THEN_500:
            return internal_error()
        if fault is CreateFault.DROP_AFTER_CREATE:
            return DropConnection()
        if fault is CreateFault.HANG_AFTER_CREATE:
            await self.faults.hang(step)
        return answer

    async def create_task(self, request: Request) -> Response:
        await self.faults.delay()
        raw = await request.body()
        if (denied := await self.auth_failure(request, raw)) is not None:
            return denied
        try:
            project_id, instance_id = path_ids(request)
            body = parse_create_body(raw)
        except InvalidParameter as exc:
            return error(400, INVALID_PARAMETER, str(exc))
        if (missing := self.unknown_instance(instance_id, body.source_instance_id)) is not None:
            return missing
        return await self.faulted(project_id, lambda: self.create(project_id, instance_id, body))

    async def faulted(self, project_id: str, act: Callable[[], Response]) -> Response:
        """The gateway's rate limit, then one fault around ``act`` (a creating call's work)."""
        # Before the fault: a throttled call takes no draw and no scripted step.
        admission = self.limiter.admit(project_id)
        self.state.record_create_arrival(admission.at, admitted=admission.admitted)
        if not admission.admitted and admission.limit is not None:
            return throttled(admission.retry_after_s, admission.limit.text)
        if self.outage.take():  # an outage window (simulator.outage): 500, nothing drawn
            return internal_error()
        # Draw even when the script decides: valid call N always meets seeded draw N.
        drawn = self.faults.create_fault()
        step = self.state.next_scripted() or FaultStep(drawn)
        self.state.record_fault(step.fault)
        return await self.with_fault(step, act)

    async def create_route(self, request: Request) -> Response:
        # Counted on arrival, so calls that fail later (401, 400, 500) are counted too.
        self.state.record_create_call()
        response = await self.create_task(request)
        if not isinstance(response, DropConnection):
            self.state.record_create_answer(response.status_code)
        return response

    async def list_route(self, request: Request) -> Response:
        self.state.record_list_call()
        await self.faults.delay()
        if (denied := await self.auth_failure(request, await request.body())) is not None:
            return denied
        try:
            project_id, instance_id = path_ids(request)
            limit = query_int(request, "limit", default=MAX_LIMIT, low=1, high=MAX_LIMIT)
            offset = query_int(request, "offset", default=0, low=0, high=None)
        except InvalidParameter as exc:
            return error(400, INVALID_PARAMETER, str(exc))
        if (missing := self.unknown_instance(instance_id)) is not None:
            return missing
        self.state.record_instance_list(project_id, instance_id, self.lifecycle.clock())
        total, page = self.state.page(project_id, instance_id, limit=limit, offset=offset)
        payload: dict[str, Any] = {
            # A string, as the real API sends it.
            "total_count": str(total),
            "replications": [task.to_replication(self.lifecycle.row(task.key)) for task in page],
        }
        return JSONResponse(payload)

    async def guard(self, request: Request, body: bytes) -> Response | None:
        await self.faults.delay()
        return await self.auth_failure(request, body)
