"""What a delivery reports, and how each of its API calls is noted, counted, timed, logged."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar, cast

from htap_sync.common.errors import ApiError
from htap_sync.common.limits.gate import Api, CallGate
from htap_sync.common.models import Attempt
from htap_sync.common.tickets.claims import Claim
from htap_sync.worker import metrics

log = logging.getLogger("htap_sync.worker")
T = TypeVar("T")


@dataclass(frozen=True)
class Outcome:
    """What became of one delivery: finished, retrying or waiting (for ``delay_s``), skipped.

    ``waiting`` is a wait for the rate limit or the breaker: it cost no attempt.
    """

    kind: Literal["finished", "retry", "waiting", "skipped"]
    delay_s: float = 0.0
    reason: str = ""


def note(
    call: Api,
    outcome: str,
    exc: ApiError | None = None,
    *,
    request_id: str | None = None,
) -> Attempt:
    """One entry of a ticket's history; ``request_id`` is the answer's ``X-Request-Id``."""
    return Attempt.model_validate(
        {
            "at": datetime.now(UTC),
            "call": call,
            "outcome": outcome,
            "http_status": exc.http_status if exc else None,
            "error_code": exc.error_code if exc else None,
            "request_id": exc.request_id if exc else request_id,
        }
    )


def gated(
    gate: CallGate,
    project_id: str,
    api: Api,
    call: Callable[[], T],
    on_done: Callable[[str, ApiError | None, str | None, int | None], None] | None = None,
    *,
    report_ok: bool = True,
) -> T:
    """Make one API call the gate let through: feed the gate its outcome, count and time it.

    ``on_done(outcome, error, request_id, http_status)`` runs last (callers log there); the
    request id and status are the error's, or the answer's when the result carries them (a
    created task's).
    ``report_ok=False``: a success is not fed to the gate here (the ticket store's ``finish``
    tells the breaker in the same step as the result).
    """
    started = time.monotonic()
    error: ApiError | None = None
    result: Any = None
    try:
        result = call()
        return cast(T, result)
    except ApiError as exc:
        error = exc
        raise
    finally:
        took_s = time.monotonic() - started
        heard(gate, project_id, api, took_s, error, result, on_done, report_ok=report_ok)


def heard(
    gate: CallGate,
    project_id: str,
    api: Api,
    took_s: float,
    error: ApiError | None,
    result: Any,
    on_done: Callable[[str, ApiError | None, str | None, int | None], None] | None,
    *,
    report_ok: bool = True,
) -> None:
    """What :func:`gated` does once a call ended (``error`` or ``result``, after ``took_s``):
    for a call made elsewhere (the batch path's calls in flight together)."""
    if error is not None or report_ok:
        gate.after_call(project_id, api, error)
    status = str(error.http_status) if error and error.http_status else ("none" if error else "2xx")
    outcome = outcome_of(error)
    metrics.API_CALLS.labels(api, outcome, status).inc()
    metrics.API_LATENCY.labels(api).observe(took_s)
    if on_done is not None:
        request_id = error.request_id if error else getattr(result, "request_id", None)
        # A success's own status (a create's), else the call's documented answer, 200 (the
        # list call's result carries none; any 2xx is read alike).
        http_status = error.http_status if error else getattr(result, "http_status", 200)
        on_done(outcome, error, request_id, http_status)


def outcome_of(error: ApiError | None) -> str:
    """A call's outcome in the one vocabulary of logs and metrics: ``ok``, or the error's
    kind in snake case (``rejected``, ``server_error``, ``throttled``, ``transport_error``...).
    """
    if error is None:
        return "ok"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(error).__name__).lower()


def call_log(
    claim: Claim, api: Api
) -> Callable[[str, ApiError | None, str | None, int | None], None]:
    """How a delivery's call is logged once it ended (never a secret)."""

    def logged(
        outcome: str, error: ApiError | None, request_id: str | None, http_status: int | None
    ) -> None:
        log.info(
            "ticket %s: %s call %s",
            claim.ticket,
            api,
            outcome,
            extra={
                "ticket": claim.ticket,
                "attempt": claim.attempts + (api == "create"),
                "api": api,
                "outcome": outcome,
                "http_status": http_status,
                "error_code": error.error_code if error else None,
                "request_id": request_id,
            },
        )

    return logged


def observed(
    claim: Claim,
    api: Api,
    call: Callable[[], T],
    gate: CallGate,
    project_id: str,
    *,
    report_ok: bool = True,
) -> T:
    """Make one call of a delivery: :func:`gated`, and logged (never a secret)."""
    return gated(gate, project_id, api, call, call_log(claim, api), report_ok=report_ok)


def finished(claim: Claim, state: str, clock: Callable[[], float]) -> None:
    if claim.created_at is not None:
        metrics.RESULTS.labels(state).observe(max(0.0, clock() - claim.created_at.timestamp()))
