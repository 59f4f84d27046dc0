"""The HTTP ingress: services in other languages enqueue creation requests and poll tickets.

```
POST /v1/replications           one request object, or a list of 1..API_MAX_ITEMS of them
GET  /v1/replications/{ticket}  the ticket's status (?wait_s=&until= for a long poll)
POST /v1/operations/{pause,resume,delete,modify}  operations on created tasks (.ingress_operations)
GET  /healthz                   200 when Redis answers PING, else 503      (no key needed)
GET  /openapi.json              the OpenAPI 3.1 document, FastAPI's own    (no key needed)
GET  /docs                      Swagger UI on that document, try-it-out on (no key needed)
GET  /metrics                   Prometheus text, unless HTAP_SYNC_METRICS_PORT serves it apart
```

A FastAPI app: the routes (:mod:`.ingress_routes`) declare their answers with the pydantic
models of :mod:`.ingress_models`, which are the OpenAPI document. Every answer carries an
``X-Request-Id`` (the caller's own, or a new one: :mod:`.request_ids`), and all but ``/docs``
and ``/metrics`` are JSON; errors are ``{"errors": [{"field", "rule", "message"}]}``, with the
model's own messages (the same as the CLI's and bulk's). A list answers one result per item
and a status a client can act on: 202 when every item was accepted, 207 when some were; when
none was, 409 if every item is a conflict, else 422. So a 2xx means something was queued and
a 4xx that nothing was.

Keys come from ``HTAP_SYNC_API_KEYS`` (``X-API-Key: K`` or ``Authorization: Bearer K``),
checked before the body is read (:mod:`.api_keys`). The body is read here, not by FastAPI: as
a stream, refused (413) as soon as it passes ``HTAP_SYNC_API_MAX_BODY_BYTES``, or at once when
its ``Content-Length`` already does; then each item is validated by the model, so that a list
answers per item. The app stays thin: the :class:`Producer` validates, dedupes and queues; its
blocking Redis calls run in Starlette's thread pool.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable, Coroutine
from typing import Any

import redis
import uvicorn
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    generate_latest,
    start_http_server,
)
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp
from uvicorn.config import LOGGING_CONFIG

from htap_sync.common.errors import RequestInvalid, TicketConflict, TicketNotFound
from htap_sync.common.logs import configure_logging
from htap_sync.common.models import TicketStatus, Until
from htap_sync.common.settings import Settings
from htap_sync.common.tickets.ids import is_ticket_id
from htap_sync.producer.api import Producer, Receipt
from htap_sync.producer.api_keys import KeyCheck
from htap_sync.producer.ingress_models import Conflict, Errors, Health
from htap_sync.producer.ingress_routes import LOOKUP, add_routes
from htap_sync.producer.problems import Problem
from htap_sync.producer.request_ids import RequestIds

logger = logging.getLogger(__name__)

RETRY_AFTER_S = 1
BACKPRESSURE_RETRY_S = 5
WAIT_POLL_S = 0.25
ExceptionHandler = Callable[[Request, Any], Coroutine[Any, Any, Response]]
DESCRIPTION = (
    "Enqueue TaurusDB HTAP -> StarRocks data-synchronization tasks and poll their tickets."
    " Every answer is JSON (but this page) and carries X-Request-Id: the caller's own when it"
    " sent one that looks like an id, else a new one. Errors are"
    ' `{"errors": [{"field", "rule", "message"}]}`.'
)


def _unavailable() -> Problem:
    return Problem(
        503,
        "redis",
        "unavailable; nothing, or for a list only part, was queued: send the same body again",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


async def read_json(request: Request, limit: int) -> Any:
    """The request's JSON body, read as a stream and refused as soon as it passes ``limit``.

    Raises:
        Problem: 415 (not JSON), 413 (too large), 400 (malformed).
    """
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media != "application/json" and not re.fullmatch(r"application/[^/]+\+json", media):
        raise Problem(415, "Content-Type", "must be application/json")
    too_large = Problem(413, "body", f"at most {limit} bytes")
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise Problem(400, "Content-Length", "not a number of bytes")
        if int(declared) > limit:
            # Known too large before a byte of it is read: answer now and drop the connection
            # rather than receive the rest.
            too_large.headers["Connection"] = "close"
            raise too_large
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise too_large
    except ClientDisconnect:
        raise Problem(400, "body", "the client disconnected before sending all of it") from None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise Problem(400, "body", "not valid JSON") from None


class Ingress:
    """The route handlers; each calls the :class:`Producer` and shapes its answer."""

    def __init__(self, settings: Settings, producer: Producer) -> None:
        self.settings = settings
        self.producer = producer

    async def create(self, request: Request) -> Response:
        """POST /v1/replications: one request object or a list of them."""
        data = await read_json(request, self.settings.ingress.max_body_bytes)
        if isinstance(data, list):
            return await self._create_many(request, data)
        if not isinstance(data, dict):
            raise Problem(422, "body", "must be an object or a list of objects")
        await self._room_for(1)
        try:
            receipt, status = await run_in_threadpool(self._enqueue, data)
        except RequestInvalid as exc:
            return JSONResponse(Errors(errors=exc.errors).model_dump(), 422)
        except TicketConflict as exc:
            request.state.ticket = exc.ticket
            conflict = Conflict(ticket=exc.ticket, state=exc.state, errors=exc.errors)
            return JSONResponse(conflict.model_dump(mode="json"), 409)
        request.state.ticket = receipt.ticket
        body = {
            "outcome": receipt.outcome.value,
            "tickets": [receipt.ticket],
            **status.to_json(),
        }
        # The lookup route's path, as url_for would give it, without building a whole URL.
        location = request.scope.get("root_path", "") + LOOKUP.format(ticket=receipt.ticket)
        return JSONResponse(body, 202, {"Location": location})

    def _enqueue(self, data: dict[str, Any]) -> tuple[Receipt, TicketStatus]:
        """Queue one request and read its ticket's status (blocking: one trip to the pool)."""
        receipt = self.producer.enqueue(data)
        return receipt, self.producer.status(receipt.ticket, ride_out_s=0)

    async def _room_for(self, count: int) -> None:
        """Backpressure: a full queue answers 503 with Retry-After instead of holding the call."""
        if self.settings.max_queue_depth is None:
            return  # no limit: no trip to Redis (or to the thread pool) to check it
        if not await run_in_threadpool(self.producer.has_room, count):
            raise Problem(
                503,
                "queue",
                "the queue is full; retry later",
                headers={"Retry-After": str(BACKPRESSURE_RETRY_S)},
            )

    async def _create_many(self, request: Request, items: list[Any]) -> Response:
        limit = self.settings.ingress.max_items
        if not 1 <= len(items) <= limit:
            raise Problem(422, "body", f"a list of 1 to {limit} requests")
        await self._room_for(self.producer.messages_for(len(items)))
        results = await run_in_threadpool(lambda: list(self.producer.enqueue_many(items)))
        tickets = [r.ticket for r in results if r.accepted and r.ticket is not None]
        if len(tickets) == len(results):
            status = 202
        elif tickets:
            status = 207
        else:
            status = 409 if all(r.status == "conflict" for r in results) else 422
        request.state.accepted = len(tickets)
        request.state.rejected = len(results) - len(tickets)
        body = {
            "results": [
                {"index": r.index, "status": r.status, "ticket": r.ticket, "errors": r.errors}
                for r in results
            ],
            "tickets": tickets,
            "accepted": len(tickets),
            "rejected": len(results) - len(tickets),
        }
        return JSONResponse(body, status)

    async def ticket(self, request: Request, ticket: str, wait_s: float, until: Until) -> Response:
        """GET /v1/replications/{ticket}: the ticket's status, after ``wait_s`` at most until
        it is done ``until`` ``created`` (the default) or ``synced``."""
        request.state.ticket = ticket
        deadline = time.monotonic() + wait_s
        try:
            if not is_ticket_id(ticket):
                raise TicketNotFound(ticket)
            # No riding out here: with Redis down, a caller gets 503 and Retry-After at once.
            status = await run_in_threadpool(self.producer.status, ticket, ride_out_s=0)
            # A long poll that holds no thread while it waits.
            while not status.done(until) and time.monotonic() < deadline:
                await asyncio.sleep(min(WAIT_POLL_S, max(0.0, deadline - time.monotonic())))
                status = await run_in_threadpool(self.producer.status, ticket, ride_out_s=0)
        except TicketNotFound:
            raise Problem(404, "ticket", "not found (never submitted, or expired)") from None
        return JSONResponse(status.to_json())

    async def health(self) -> Response:
        """GET /healthz: whether Redis answers PING."""
        try:
            await run_in_threadpool(self.producer.store.redis.ping)
        except redis.RedisError:
            headers = {"Retry-After": str(RETRY_AFTER_S)}
            body = Health(ok=False, redis="unreachable").model_dump()
            return JSONResponse(body, 503, headers)
        return JSONResponse(Health(ok=True, redis="ok").model_dump())


async def _problem(request: Request, exc: Exception) -> Response:
    """A :class:`Problem` raised by a handler or the key check: its JSON answer."""
    assert isinstance(exc, Problem)  # registered for Problem only
    return exc.response()


async def _redis_down(request: Request, exc: Exception) -> Response:
    """An unreachable Redis: 503 with Retry-After, the error logged (never sent)."""
    logger.warning("Redis unavailable: %s: %s", type(exc).__name__, exc)
    return _unavailable().response()


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths (404) and methods (405) as JSON, keeping Starlette's ``Allow`` header."""
    if not isinstance(exc, HTTPException):  # registered for HTTPException only
        raise exc
    if exc.status_code == 405:
        field, rule = "method", "not allowed on this path"
    else:
        field, rule = "path", "no such route" if exc.status_code == 404 else str(exc.detail)
    return Problem(exc.status_code, field, rule, headers=dict(exc.headers or {})).response()


def _invalid_parameters(max_wait_s: float) -> ExceptionHandler:
    """FastAPI's parameter checks (``wait_s``, ``until``) as 422 in the ingress's error shape."""
    rules = {
        "wait_s": f"must be a number of seconds from 0 to {max_wait_s:g}",
        "until": "must be created or synced",
    }

    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)  # registered for it only
        errors = []
        for error in exc.errors():
            field = str(error["loc"][-1]) if error.get("loc") else "request"
            rule = rules.get(field, str(error.get("msg", "invalid")))
            errors.append({"field": field, "rule": rule, "message": f"{field}: {rule}"})
        return JSONResponse({"errors": errors}, 422)

    return invalid


async def _metrics(request: Request) -> Response:
    """GET /metrics: Prometheus text (no key; expose the port only to the scraper)."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def make_ingress(settings: Settings, producer: Producer) -> FastAPI:
    """The ingress app on a producer (the caller closes it).

    ``/metrics`` is a route of the app unless ``HTAP_SYNC_METRICS_PORT`` is set: then
    :func:`serve_ingress` serves it on that port alone, apart from the public API.

    Raises:
        SettingsError: authentication is on and ``HTAP_SYNC_API_KEYS`` names no key.
    """
    on = settings.ingress.auth == "on"
    keyed = [KeyCheck(settings.ingress.accepted_keys())] if on else []
    app = FastAPI(
        title="taurus-htap-sync ingress",
        version="1",
        description=DESCRIPTION,
        redoc_url=None,
        swagger_ui_parameters={"tryItOutEnabled": True, "persistAuthorization": True},
        middleware=[Middleware(RequestIds)],
        exception_handlers={
            Problem: _problem,
            redis.RedisError: _redis_down,
            HTTPException: _http_error,
            RequestValidationError: _invalid_parameters(settings.ingress.max_wait_s),
        },
    )
    add_routes(app, Ingress(settings, producer), keyed)
    if settings.observability.metrics_port is None:
        app.add_route("/metrics", _metrics, methods=["GET"], include_in_schema=False)
    return app


def ingress_config(
    app: ASGIApp, *, host: str, port: int, configure_logging: bool = True
) -> uvicorn.Config:
    """How uvicorn serves the ingress: plain HTTP/1.1, no websockets, no lifespan.

    Args:
        configure_logging: let uvicorn set up logging (the CLI); False leaves the host
            process's logging alone (an ingress embedded in tests or another program).
    """
    # ws="none": importing a websockets backend can emit DeprecationWarnings (errors in tests).
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        ws="none",
        lifespan="off",
        log_level="info",
        access_log=False,  # RequestIds logs each answer, with its request id
        log_config=LOGGING_CONFIG if configure_logging else None,
    )


def serve_ingress(settings: Settings, host: str, port: int) -> None:
    """Serve the ingress until interrupted (blocking; ``htap-sync api``).

    Raises:
        SettingsError: authentication is on and no key is configured (before anything starts).
    """
    settings.ingress.accepted_keys()
    configure_logging(settings.observability.log_format)
    if settings.observability.metrics_port is not None:
        # Scraped by Prometheus on its own port, which need not be published with the API's.
        start_http_server(settings.observability.metrics_port, addr="0.0.0.0")  # noqa: S104
    producer = Producer(settings)
    try:
        app = make_ingress(settings, producer)
        uvicorn.Server(ingress_config(app, host=host, port=port, configure_logging=False)).run()
    finally:
        producer.close()
