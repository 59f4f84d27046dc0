"""The Python API: enqueue a creation request, look its ticket up, wait for it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import redis
from celery import Celery

from common.celery_app import CREATE_REPLICATION, make_celery
from common.connections import make_redis, make_store
from common.errors import TicketNotFound
from common.models import ReplicationRequest, TicketStatus, parse_request
from common.settings import Settings
from common.store import Submitted


@dataclass(frozen=True)
class Receipt:
    """What an accepted submission returns.

    Attributes:
        ticket: the id to poll.
        outcome: ``queued`` (new), ``duplicate`` (the same request was already in flight or
            done; nothing was queued) or ``redriven`` (a failed ticket was queued again).
        request: the validated request.
    """

    ticket: str
    outcome: Submitted
    request: ReplicationRequest


class Producer:
    """Validates and enqueues creation requests; reads tickets.

    Args:
        settings: built once by the caller (:func:`common.settings.load_settings`).
        redis_client: a ``decode_responses=True`` client; made from settings when omitted.
        celery: the Celery app to send with; made from settings when omitted.
        clock: monotonic seconds, for :meth:`wait` deadlines.
        sleep: how :meth:`wait` pauses between polls.

    Example:
        >>> producer = Producer(load_settings())
        >>> receipt = producer.enqueue({"instance_id": ..., "task_name": "orders_sync", ...})
        >>> producer.wait([receipt.ticket], timeout_s=600)
    """

    def __init__(
        self,
        settings: Settings,
        *,
        redis_client: redis.Redis | None = None,
        celery: Celery | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self._redis = redis_client if redis_client is not None else make_redis(settings)
        self.store = make_store(settings, self._redis)
        self._celery = celery if celery is not None else make_celery(settings)
        self._clock = clock
        self._sleep = sleep

    def validate(self, request: ReplicationRequest | Mapping[str, Any]) -> ReplicationRequest:
        """Check a request against the API's rules, filling ``project_id`` from the settings.

        Raises:
            RequestInvalid: naming each field at fault.
        """
        if isinstance(request, ReplicationRequest):
            return request
        data = dict(request) if isinstance(request, Mapping) else request
        if isinstance(data, dict) and data.get("project_id") is None and self.settings.project_id:
            data["project_id"] = self.settings.project_id
        return parse_request(data)

    def enqueue(self, request: ReplicationRequest | Mapping[str, Any]) -> Receipt:
        """Validate a request, record its ticket and queue it (unless it is already there).

        Raises:
            RequestInvalid: the request breaks a rule; nothing was recorded or queued.
            TicketConflict: another request holds this task name and has not failed.
            kombu/redis errors: the broker is unreachable; the ticket is then marked failed
                (``HTAP_SYNC.ENQUEUE_FAILED``) so that it can be submitted again.
        """
        valid = self.validate(request)
        ticket, run, outcome = self.store.submit(valid)
        if outcome is not Submitted.DUPLICATE:
            try:
                self._celery.send_task(
                    CREATE_REPLICATION,
                    kwargs={
                        "ticket": ticket,
                        "run": run,
                        "request": valid.model_dump(exclude_none=True),
                    },
                    queue=self.settings.queue,
                )
            except Exception as exc:
                self.store.abandon(ticket, run, f"could not queue: {type(exc).__name__}")
                raise
        return Receipt(ticket=ticket, outcome=outcome, request=valid)

    def status(self, ticket: str) -> TicketStatus:
        """The ticket's current status.

        Raises:
            TicketNotFound: never submitted, or finished longer than ``result_ttl_s`` ago.
        """
        return self.store.get(ticket)

    def statuses(self, tickets: Iterable[str]) -> dict[str, TicketStatus | None]:
        """Many statuses in one round trip; None for unknown tickets."""
        return self.store.get_many(tickets)

    def failed(self, *, limit: int = 1000) -> list[TicketStatus]:
        """Failed tickets whose results have not expired, the most recent failure first."""
        return self.store.failed(limit=limit)

    def retry(self, ticket: str) -> Receipt:
        """Submit a ticket's recorded request again (a re-drive when it failed).

        Returns:
            the receipt: ``redriven`` for a failed ticket; ``duplicate`` (nothing queued) for
            one in flight or succeeded.

        Raises:
            TicketNotFound: unknown ticket, or its result expired.
        """
        return self.enqueue(self.store.get(ticket).request)

    def wait(
        self,
        tickets: Iterable[str],
        *,
        timeout_s: float,
        poll_s: float = 0.25,
        on_poll: Callable[[dict[str, TicketStatus]], None] | None = None,
    ) -> dict[str, TicketStatus]:
        """Poll until every ticket is finished or ``timeout_s`` has passed.

        Returns:
            the last status of every ticket; check ``state.terminal`` for the unfinished ones.

        Raises:
            TicketNotFound: a ticket is unknown (it would otherwise look pending forever).
        """
        pending = list(dict.fromkeys(tickets))
        done: dict[str, TicketStatus] = {}
        deadline = self._clock() + timeout_s
        while True:
            for ticket, status in self.store.get_many(pending).items():
                if status is None:
                    raise TicketNotFound(ticket)
                done[ticket] = status
            pending = [t for t in pending if not done[t].state.terminal]
            if on_poll is not None:
                on_poll(done)
            if not pending or self._clock() >= deadline:
                return done
            self._sleep(min(poll_s, max(0.0, deadline - self._clock())))

    def close(self) -> None:
        """Release the Redis and broker connections."""
        self._redis.close()
        self._celery.close()
