"""What the tasks do with a delivery: :func:`process_ticket` with the worker's collaborators,
then its verdict acted on (shared by the single and the batch task)."""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from celery.exceptions import Reject

from htap_sync.common.models import ErrorPayload, TicketStatus
from htap_sync.common.settings import Settings
from htap_sync.common.tickets.claim_types import PROBE_S
from htap_sync.common.tickets.claims import Claim, NotReplicated
from htap_sync.worker.delivery.operations import is_operation, process_operation
from htap_sync.worker.delivery.ticket import Outcome, process
from htap_sync.worker.metrics import observe_delivery
from htap_sync.worker.runtime import Collaborators, Runtime

log = logging.getLogger("htap_sync.worker")
# Reasons of a delivery that succeeded its ticket: no need to read it back (a round trip).
_SUCCEEDED = frozenset({"created", "reconciled"})


class TicketFailed(Exception):
    """The delivery failed its ticket for good: the task ends in FAILURE (Flower shows it)."""


def _raise_if_failed(found: TicketStatus | None) -> None:
    """Raise :class:`TicketFailed` with the ticket's error when it ended failed."""
    if found is not None and found.state.value == "failed" and found.error is not None:
        e = found.error
        raise TicketFailed(f"{found.ticket}: {e.http_status} {e.error_code} {e.error_msg}")


def _report(ticket: str, outcome: Outcome, found: TicketStatus | None = None) -> None:
    """Log a delivery's outcome (a ticket that failed for good at WARNING, with its task and
    the error) and count it in the metrics."""
    extra: dict[str, Any] = {
        "ticket": ticket,
        "outcome": outcome.kind,
        "reason": outcome.reason,
        "delay_s": round(outcome.delay_s, 3),
    }
    failed = found is not None and found.state.value == "failed"
    if found is not None and failed:
        extra["task"] = found.task_ref
        extra.update(found.error.model_dump(exclude_none=True) if found.error else {})
    level = logging.WARNING if failed else logging.INFO
    where = f" (task {extra['task']})" if failed else ""
    log.log(level, "ticket %s: %s (%s)%s", ticket, outcome.kind, outcome.reason, where, extra=extra)
    observe_delivery(outcome.kind, outcome.reason, outcome.delay_s)


def deliver(
    ticket: str,
    run: str,
    request: Any,
    parts: Collaborators,
    *,
    settings: Settings,
    runtime: Runtime,
) -> str:
    """One delivery of one ticket (a creation's through :func:`process`, an operation's
    through :func:`process_operation`) with the process's collaborators ``parts`` (taken
    once per task); acts on its verdict (:func:`settle`)."""
    try:
        # An operation's message comes by the same task (the mover sends every ticket so).
        handle = process_operation if is_operation(request) else process
        end: Outcome | Exception = handle(ticket, run, request, parts.delivery(settings))
    except Exception as exc:
        end = exc
    return settle(ticket, run, end, parts=parts, runtime=runtime)


def settle(
    ticket: str, run: str, end: Outcome | Exception, *, parts: Collaborators, runtime: Runtime
) -> str:
    """Act on how one delivery ended (its outcome, or what it raised): both tasks do this
    for each ticket.

    Returns:
        the outcome's kind.

    Raises:
        Reject: Redis is unreachable; the message is to be given back.
        TicketFailed: the ticket ended failed.
        Exception: a bug (``end``); the ticket was failed visibly first.
    """
    store = parts.store
    try:
        if isinstance(end, Exception):
            raise end
        if end.kind == "skipped" and end.reason == "busy":
            # Held by a live delivery: the mover looks at its holder a probe later (a holder
            # whose process died is taken over then, a live one keeps it).
            store.defer(ticket, run, due_at=time.time() + PROBE_S)
    except (redis.RedisError, NotReplicated) as exc:
        # The store is unreachable: give the message back; it is also restored from the
        # broker's unacked set after the visibility timeout if this requeue cannot happen.
        log.warning("ticket %s: Redis unavailable (%s); message given back", ticket, exc)
        runtime.abandon(ticket, run)
        raise Reject(str(exc), requeue=True) from exc
    except Exception as exc:
        # A bug must not leave a ticket running forever: fail it visibly (re-drivable).
        log.exception("ticket %s: unexpected error", ticket)
        error = ErrorPayload(error_code="HTAP_SYNC.INTERNAL", error_msg=type(exc).__name__)
        store.fail(Claim(ticket, run), error)
        raise
    done = end.kind == "finished" and end.reason not in _SUCCEEDED
    try:
        found = store.get(ticket) if done else None
    except redis.RedisError as exc:  # the ending is stored; only its report waits for Redis
        log.warning("ticket %s: ended %s, not read back (%s)", ticket, end.reason, exc)
        return end.kind
    _report(ticket, end, found)
    _raise_if_failed(found)
    return end.kind
