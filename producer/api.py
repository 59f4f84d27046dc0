"""The Python API: enqueue a creation request, look its ticket up, wait for it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import redis
from celery import Celery

from htap_sync.common.celery_app import make_celery
from htap_sync.common.connections import make_redis, make_ticket_store
from htap_sync.common.errors import RequestInvalid, TicketNotFound
from htap_sync.common.fair_feed import announce, submit_queue, waiting_depth
from htap_sync.common.lanes import Lane, check_routing, queue_keys, queue_name
from htap_sync.common.messages import batch_frame, batch_item, create_message
from htap_sync.common.models import (
    OperationRequest,
    ReplicationRequest,
    TicketStatus,
    Until,
    parse_request,
)
from htap_sync.common.settings import Settings
from htap_sync.common.tickets.store import Submitted

if TYPE_CHECKING:
    from htap_sync.producer.operations import Operations

T = TypeVar("T")

Accepted = Literal["queued", "duplicate", "redriven"]
# Subclasses of redis.ConnectionError that a retry cannot cure: a wrong password, no rights.
_REFUSED = (redis.AuthenticationError, redis.exceptions.AuthorizationError)


@dataclass(frozen=True)
class ItemResult:
    """What became of one request of :meth:`Producer.enqueue_many`.

    Attributes:
        index: its position in the input, from 0.
        status: ``queued``, ``duplicate`` or ``redriven`` (accepted), ``conflict`` or
            ``invalid`` (not queued).
        ticket: the ticket (None when invalid).
        errors: what is wrong, field by field (invalid, conflict).
        request: the validated request (None when invalid).
    """

    index: int
    status: Literal["queued", "duplicate", "redriven", "conflict", "invalid"]
    ticket: str | None
    errors: list[dict[str, str]] = field(default_factory=list)
    request: ReplicationRequest | None = None

    @property
    def accepted(self) -> bool:
        """True when the request is (or already was) queued."""
        return self.status in ("queued", "duplicate", "redriven")


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
    request: ReplicationRequest | OperationRequest


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
        self.store = make_ticket_store(settings, self._redis)
        self._celery = celery if celery is not None else make_celery(settings)
        self._clock = clock
        self._sleep = sleep
        self._queue_keys = queue_keys(settings)  # each lane's (one without lanes)
        self._per_message = settings.batch_size
        self.backpressure_poll_s = 0.5
        # How long status()/statuses() retry an unreachable Redis (wait() uses its deadline).
        self.ride_out_s = 10.0

    def validate(self, request: ReplicationRequest | Mapping[str, Any]) -> ReplicationRequest:
        """Check a request against the API's rules, filling ``project_id`` from the settings.

        Raises:
            RequestInvalid: naming each field at fault.
        """
        if isinstance(request, ReplicationRequest):
            return request
        data = dict(request) if isinstance(request, Mapping) else request
        if (
            isinstance(data, dict)
            and data.get("project_id") is None
            and self.settings.cloud.project_id
        ):
            data["project_id"] = self.settings.cloud.project_id
        return parse_request(data)

    def enqueue(
        self,
        request: ReplicationRequest | Mapping[str, Any],
        *,
        lane: Lane | None = None,
        tenant: str | None = None,
    ) -> Receipt:
        """Validate a request, then record its ticket and queue its message in one step.

        ``lane``: ``interactive`` (default: served before bulk work) or ``bulk``; ``tenant``:
        whose fair share of bulk it takes (default: its project). The request's own win.

        Raises:
            RequestInvalid: the request breaks a rule; nothing was recorded or queued.
            TicketConflict: another request holds this task name and has not failed.
            redis.RedisError: Redis is unreachable; nothing was recorded or queued.
        """
        check_routing(lane, tenant)
        valid = self.validate(request).routed(lane or "interactive", tenant)
        run = uuid.uuid4().hex
        ticket, run, outcome = self.store.submit(
            valid, run=run, queue_key=self._lane_key(valid), message=self._message(valid, run)
        )
        self._announce([valid])
        return Receipt(ticket=ticket, outcome=outcome, request=valid)

    def _message(self, request: ReplicationRequest, run: str) -> str:
        ticket = request.ticket
        data = request.model_dump(exclude_none=True)
        queue = queue_name(self.settings, request.lane)
        return create_message(self._celery, queue, ticket, run, data)

    def _announce(self, requests: Iterable[ReplicationRequest]) -> None:
        announce(self._redis, self.settings, requests)  # bulk tenants: messages to feed

    def _lane_key(self, request: ReplicationRequest) -> str:
        """The broker list of the request's lane (bulk: its tenant's, common/fair_feed.py)."""
        return submit_queue(self.settings, request.lane, request.tenant or request.project_id)

    @property
    def operations(self) -> Operations:
        """Pause, resume, delete, modify and undo (:mod:`htap_sync.producer.operations`)."""
        from htap_sync.producer.operations import Operations  # it builds on this module

        return Operations(self)

    @property
    def queue_key(self) -> str:
        """The broker list operations' messages go onto: the interactive lane's (an operation
        is a user's command, waited for)."""
        return self._queue_keys["interactive"]

    def message(self, ticket: str, run: str, data: dict[str, Any]) -> str:
        """The broker message of one ticket's delivery (``data``: its request, JSON-ready)."""
        return create_message(self._celery, self.settings.queue, ticket, run, data)

    def enqueue_many(
        self,
        requests: Iterable[ReplicationRequest | Mapping[str, Any] | RequestInvalid],
        *,
        batch_size: int = 500,
        lane: Lane | None = None,
        tenant: str | None = None,
    ) -> Iterator[ItemResult]:
        """Validate and enqueue many requests, a pipelined batch at a time.

        Each batch (``batch_size`` requests) is one round trip to Redis, tickets and messages
        together. Its valid requests are grouped ``HTAP_SYNC_BATCH_SIZE`` to a message of the
        batch task (``htap_sync.create_replications``), whose calls a worker runs together;
        a message carries the tickets it recorded (queued or re-driven), never a duplicate or
        a conflict. At 1, one message per request, as :meth:`enqueue` sends. When the queue
        holds more messages than ``HTAP_SYNC_MAX_QUEUE_DEPTH``, the next batch waits until
        workers have drained it (backpressure instead of flooding Redis).

        Args:
            requests: the requests; a :class:`RequestInvalid` stands for one already known bad.
            batch_size: requests per round trip to Redis (rounded up to whole messages).
            lane, tenant: for requests that name none: ``bulk`` (default) or ``interactive``;
                whose fair share of the bulk lane they take (default: their project).

        Yields:
            one :class:`ItemResult` per request, in order, as each batch is submitted: invalid
            ones with their errors (never queued), conflicts, and accepted ones with the ticket.
        """
        check_routing(lane, tenant)
        lane = lane or "bulk"
        per = self._per_message
        batch_size = -(-batch_size // per) * per  # full messages but for the last one
        if self.settings.max_queue_depth is not None:
            batch_size = min(batch_size, self.settings.max_queue_depth * per)
        batch: list[tuple[int, ReplicationRequest | RequestInvalid]] = []
        for index, item in enumerate(requests):
            if isinstance(item, RequestInvalid):  # already known bad (an unreadable file row)
                batch.append((index, item))
                continue
            try:
                batch.append((index, self.validate(item).routed(lane, tenant)))
            except RequestInvalid as exc:
                batch.append((index, exc))
            if len(batch) >= batch_size:
                yield from self._flush(batch)
                batch = []
        yield from self._flush(batch)

    def _flush(
        self, batch: list[tuple[int, ReplicationRequest | RequestInvalid]]
    ) -> Iterator[ItemResult]:
        valid = [(i, r) for i, r in batch if isinstance(r, ReplicationRequest)]
        submitted: dict[int, tuple[str, str, str]] = {}
        by_key: dict[str, list[tuple[int, ReplicationRequest]]] = {}
        for i, r in valid:  # a message carries tickets of one queue (lane and tenant)
            by_key.setdefault(self._lane_key(r), []).append((i, r))
        for key, ours in by_key.items():
            requests = [request for _, request in ours]
            if self._per_message > 1:
                answers = self._submit_batched(requests, key)
            else:
                self.wait_for_room(len(requests))
                answers = self.store.submit_many(
                    [(r, run, key, self._message(r, run)) for r, run in _runs(requests)]
                )
            submitted |= {i: answer for (i, _), answer in zip(ours, answers, strict=True)}
        self._announce(r for _, r in valid)
        for index, entry in batch:
            if isinstance(entry, RequestInvalid):
                yield ItemResult(index, "invalid", None, entry.errors)
                continue
            ticket, outcome, state = submitted[index]
            if outcome == "conflict":
                rule = f"another request holds this task name ({state})"
                errors = [{"field": "task_name", "rule": rule, "message": f"task_name: {rule}"}]
                yield ItemResult(index, "conflict", ticket, errors, entry)
            else:
                yield ItemResult(index, cast(Accepted, outcome), ticket, [], entry)

    def _submit_batched(
        self, requests: list[ReplicationRequest], queue_key: str
    ) -> list[tuple[str, str, str]]:
        """Submit ``requests`` as messages of up to ``batch_size`` tickets (the batch task)."""
        size = self._per_message
        groups = [requests[i : i + size] for i in range(0, len(requests), size)]
        self.wait_for_room(self.messages_for(len(requests)))
        batches = []
        for group in groups:
            items = []
            for request, run in _runs(group):
                ticket = request.ticket
                data = request.model_dump(exclude_none=True)
                items.append((request, run, batch_item(ticket, run, data)))
            queue = queue_name(self.settings, group[0].lane)
            batches.append((batch_frame(self._celery, queue, size), items))
        return self.store.submit_batches(batches, queue_key)

    def messages_for(self, count: int) -> int:
        """How many messages :meth:`enqueue_many` queues for ``count`` new requests (at most)."""
        return -(-count // self._per_message)

    def queue_depth(self) -> int:
        """Messages waiting in the queue, every lane's (not yet taken by a worker)."""
        queued = sum(int(self._redis.llen(key)) for key in set(self._queue_keys.values()))
        return queued + waiting_depth(self._redis, self.settings)  # and the tenants' queues

    def has_room(self, count: int) -> bool:
        """True when ``count`` more messages fit under ``HTAP_SYNC_MAX_QUEUE_DEPTH``."""
        limit = self.settings.max_queue_depth
        return limit is None or self.queue_depth() + count <= limit

    def wait_for_room(self, count: int) -> None:
        """Block until ``count`` more messages fit under ``HTAP_SYNC_MAX_QUEUE_DEPTH``.

        Polls the queue's length every ``backpressure_poll_s`` while workers drain it.
        """
        while not self.has_room(count):
            self._sleep(self.backpressure_poll_s)

    def status(self, ticket: str, *, ride_out_s: float | None = None) -> TicketStatus:
        """The ticket's current status.

        Args:
            ticket: the ticket id.
            ride_out_s: how long an unreachable Redis is retried (with backoff) before its
                error is raised, in seconds; default :attr:`ride_out_s` (10 s).

        Raises:
            TicketNotFound: never submitted, or finished longer than ``result_ttl_s`` ago.
            redis.ConnectionError: Redis stayed unreachable for ``ride_out_s``, or refused
                our credentials (``redis.AuthenticationError``, at once).
        """
        deadline = self._clock() + (self.ride_out_s if ride_out_s is None else ride_out_s)
        return self._riding_out(lambda: self.store.get(ticket), deadline)

    def statuses(
        self, tickets: Iterable[str], *, ride_out_s: float | None = None
    ) -> dict[str, TicketStatus | None]:
        """Many statuses in one round trip; None for unknown tickets (outages as
        :meth:`status`)."""
        wanted = list(tickets)
        deadline = self._clock() + (self.ride_out_s if ride_out_s is None else ride_out_s)
        return self._riding_out(lambda: self.store.get_many(wanted), deadline)

    def _riding_out(self, call: Callable[[], T], deadline: float) -> T:
        """``call()``, retried with backoff while Redis is unreachable, until ``deadline``.

        A restarting Redis refuses connections, or answers LOADING while it reads its AOF:
        both pass. Anything else, or the deadline, raises; so does a refused password, which
        redis-py files under ConnectionError but which waiting never cures.
        """
        pause = 0.05
        while True:
            try:
                return call()
            except _REFUSED:
                raise
            except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                left = deadline - self._clock()
                if left <= 0:
                    raise
                self._sleep(min(pause, left))
                pause = min(pause * 2, 2.0)

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
        request = self.store.get(ticket).request
        if isinstance(request, OperationRequest):  # an operation's ticket: its operation again
            again = self.operations.submit(request)
            return Receipt(str(again.ticket), Submitted(again.outcome), request)
        return self.enqueue(request)

    def wait(
        self,
        tickets: Iterable[str],
        *,
        timeout_s: float,
        poll_s: float = 0.25,
        on_poll: Callable[[dict[str, TicketStatus]], None] | None = None,
        until: Until = "created",
    ) -> dict[str, TicketStatus]:
        """Poll until every ticket has its answer or ``timeout_s`` has passed.

        Args:
            tickets: the tickets to wait for.
            timeout_s: the longest wait, in seconds.
            poll_s: the pause between two looks, in seconds.
            on_poll: called with every ticket's latest status after each look.
            until: ``"created"``: until each ticket succeeded or failed. ``"synced"``: until
                each failed, or succeeded and its task was followed to its end (syncing,
                failed to sync, or unknown past ``HTAP_SYNC_FOLLOW_TIMEOUT_S``).

        Returns:
            the last status of every ticket; ``status.done(until)`` tells the unfinished ones.

        Raises:
            TicketNotFound: a ticket is unknown (it would otherwise look pending forever).
            redis.ConnectionError: Redis was unreachable until ``timeout_s`` ran out (a shorter
                outage is ridden out, with backoff).
        """
        pending = list(dict.fromkeys(tickets))
        done: dict[str, TicketStatus] = {}
        deadline = self._clock() + timeout_s
        while True:
            found = self._riding_out(partial(self.store.get_many, list(pending)), deadline)
            for ticket, status in found.items():
                if status is None:
                    raise TicketNotFound(ticket)
                done[ticket] = status
            pending = [t for t in pending if not done[t].done(until)]
            if on_poll is not None:
                on_poll(done)
            if not pending or self._clock() >= deadline:
                return done
            self._sleep(min(poll_s, max(0.0, deadline - self._clock())))

    def close(self) -> None:
        """Release the Redis and broker connections."""
        self._redis.close()
        self._celery.close()


def _runs(requests: list[ReplicationRequest]) -> Iterator[tuple[ReplicationRequest, str]]:
    """Each request with a fresh run id."""
    for request in requests:
        yield request, uuid.uuid4().hex
