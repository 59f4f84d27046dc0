"""The ingress's routes as FastAPI declares them: parameters, answers, links and examples.

No ``from __future__ import annotations`` here: the ticket route's ``wait_s`` range comes from
the settings, and FastAPI reads the endpoint's annotations at run time.
"""

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import FastAPI, Path, Query, Security
from starlette.requests import Request
from starlette.responses import Response

from htap_sync.common.models import TicketStatus, Until
from htap_sync.producer.api_keys import BEARER
from htap_sync.producer.ingress_models import (
    TICKET_LINK,
    TICKET_PATTERN,
    Accepted,
    BatchResult,
    Conflict,
    Errors,
    Health,
    answer,
    request_body,
)
from htap_sync.producer.ingress_operations import add_operation_routes

if TYPE_CHECKING:
    from htap_sync.producer.ingress import Ingress

LOOKUP = "/v1/replications/{ticket}"
_UNAVAILABLE = answer(
    "Redis is unreachable, or the queue is over HTAP_SYNC_MAX_QUEUE_DEPTH. Nothing, or for a"
    " list only part, was queued: sending the same body again is safe (the same tickets;"
    " duplicates are not queued twice).",
    Errors,
    "Retry-After",
)
_INTERNAL = answer("An unexpected error (a bug); it is logged with its request id.", Errors)
_UNAUTHORIZED = answer("No API key, or one that is not accepted.", Errors, "WWW-Authenticate")


def _post_answers(limit: int, max_items: int) -> dict[int | str, dict[str, Any]]:
    return {
        202: answer(
            "Accepted: one object's ticket and status (with a Location to poll), or every item"
            " of a list accepted.",
            Accepted | BatchResult,
            "Location",
            links=TICKET_LINK,
        ),
        207: answer("A list of which some items were accepted.", BatchResult, links=TICKET_LINK),
        400: answer("The body is not valid JSON.", Errors),
        409: answer(
            "A conflict: a different request holds the task name and has not failed (or, for"
            " a list, every item is such a conflict).",
            Conflict | BatchResult,
        ),
        413: answer(f"The body is larger than {limit} bytes.", Errors),
        415: answer("The body is not application/json.", Errors),
        422: answer(
            "Invalid: the request breaks a rule (each error names its field), the body is"
            f" neither an object nor a list of 1 to {max_items} of them, or no item of the list"
            " was accepted and some are invalid.",
            Errors | BatchResult,
        ),
        500: _INTERNAL,
        503: _UNAVAILABLE,
    }


def _ticket_endpoint(ingress: "Ingress", max_wait_s: float) -> Callable[..., Awaitable[Response]]:
    async def get_replication(
        request: Request,
        ticket: Annotated[
            str,
            Path(
                description="A ticket id from a POST (any other answers 404).",
                json_schema_extra={"pattern": TICKET_PATTERN},
                examples=["tk_" + "3f" * 16],
            ),
        ],
        wait_s: Annotated[
            float,
            Query(
                ge=0,
                le=max_wait_s,
                description="Seconds to wait (a long poll) until the ticket is done.",
                examples=[0, 10],
            ),
        ] = 0,
        until: Annotated[
            Until,
            Query(description="What done means: created (the ticket ended) or synced."),
        ] = "created",
    ) -> Response:
        return await ingress.ticket(request, ticket, wait_s, until)

    return get_replication


def add_routes(app: FastAPI, ingress: "Ingress", keyed: list[Any]) -> None:
    """The API's routes on ``app``; ``keyed`` are the key check's dependencies (none: auth off)."""
    settings = ingress.settings.ingress
    auth: dict[int | str, dict[str, Any]] = {401: _UNAUTHORIZED} if keyed else {}
    deps = [Security(check) for check in (*keyed, BEARER)] if keyed else []
    app.add_api_route(
        "/v1/replications",
        ingress.create,
        methods=["POST"],
        status_code=202,
        operation_id="createReplications",
        summary="Validate and enqueue one creation request, or a list of them.",
        description=(
            f"One object answers 202 (accepted), 409 (conflict) or 422 (invalid). A list of 1 to"
            f" {settings.max_items} objects answers with one result per item: 202 when every"
            " item was accepted, 207 when some were; when none was, 409 if every item is a"
            " conflict, else 422. A 2xx means something was queued, a 4xx that nothing was."
        ),
        dependencies=deps,
        responses={**_post_answers(settings.max_body_bytes, settings.max_items), **auth},
        openapi_extra={
            "requestBody": request_body(
                max_items=settings.max_items,
                project_defaulted=ingress.settings.cloud.project_id is not None,
            )
        },
    )
    _add_lookup(app, ingress, deps, auth)
    common: dict[int | str, dict[str, Any]] = {
        code: entry
        for code, entry in _post_answers(settings.max_body_bytes, settings.max_items).items()
        if code in (400, 413, 415, 500, 503)
    }
    defaulted = ingress.settings.cloud.project_id is not None
    add_operation_routes(app, ingress.producer, settings, deps, auth, common, defaulted=defaulted)
    app.add_api_route(
        "/healthz",
        ingress.health,
        methods=["GET"],
        operation_id="health",
        summary="Whether the ingress can reach Redis (no key needed).",
        responses={
            200: answer("Redis answers PING.", Health),
            503: answer("Redis does not answer.", Health, "Retry-After"),
        },
    )


def _add_lookup(
    app: FastAPI, ingress: "Ingress", deps: list[Any], auth: dict[int | str, dict[str, Any]]
) -> None:
    """GET /v1/replications/{ticket}, its wait_s range from the settings."""
    app.add_api_route(
        LOOKUP,
        _ticket_endpoint(ingress, ingress.settings.ingress.max_wait_s),
        methods=["GET"],
        name="ticket",
        operation_id="getReplication",
        summary="The status of a ticket.",
        description="With wait_s, the answer waits (a long poll) until the ticket is done until"
        " the milestone asked for: created (it succeeded or failed) or synced (it failed, or"
        " its task was followed to its end: syncing, failed to sync, or unknown).",
        dependencies=deps,
        responses={
            200: answer(
                "The ticket's status (when waiting: once done, or when wait_s ran out).",
                TicketStatus,
            ),
            **auth,
            404: answer("No such ticket (never submitted, or its result expired).", Errors),
            422: answer("wait_s or until is out of range (the error names which).", Errors),
            500: _INTERNAL,
            503: _UNAVAILABLE,
        },
    )
