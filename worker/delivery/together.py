"""The deliveries of a batch's tickets, their common path taken together (no Celery here).

Each ticket goes through the steps of :func:`~htap_sync.worker.delivery.ticket.process_ticket`, with
the same functions; only the common path is taken for all tickets at once:

1. each message is checked as alone (:func:`~htap_sync.worker.delivery.start.check`);
2. one store step starts them all (:meth:`ClaimStore.start_many`: each ticket its own claim,
   rate token, breaker check and in-doubt mark, in order; one ``WAIT`` for replicas after);
3. the create calls of the tickets marked to go now are sent together
   (:meth:`TaurusClient.create_replications`: in flight at once on the event loop);
4. one store step records every task created (:meth:`ClaimStore.finish_many`: success,
   breaker, following), each ticket's enrolment with its own success.

A ticket off that path (the gate said wait or sleep first, in doubt, replicas lagging, or a
configured request, created in two phases) goes on alone through
:func:`~htap_sync.worker.delivery.ticket.carry_on`, as a single delivery would after
its start; a create call that failed goes to :func:`~htap_sync.worker.delivery.ticket.create_failed`
(a look first when the refusal may be our own task's). Those run in threads, beside the
common path. The guarantees are the single delivery's, step for step; the batch only shares
the round trips.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import redis

from htap_sync.common.errors import ApiError
from htap_sync.common.models import ReplicationRequest
from htap_sync.common.tickets.claims import FinishCall, Limits, Started
from htap_sync.worker.api.client import Created
from htap_sync.worker.delivery.settle import Outcome, call_log, finished, heard, note
from htap_sync.worker.delivery.start import Delivery, check, follow_created, own_start
from htap_sync.worker.delivery.ticket import carry_on, create_failed, record_created

Item = tuple[str, str, Any]  # ticket, run, the message's request
End = Outcome | Exception  # a ticket's outcome, or what its delivery raised
Going = tuple[int, ReplicationRequest, Started, Limits | None]  # marked to send now


def process_batch(items: Sequence[Item], d: Delivery) -> list[End]:
    """Deliver every ticket of a batch; each one's outcome (or exception), in order.

    Raises:
        redis.RedisError: a store step for the whole batch failed (nothing is lost: marked
            tickets are in doubt, and their next delivery looks first).
    """
    ends: list[End | None] = [None] * len(items)
    apart: list[tuple[int, Callable[[], Outcome]]] = []
    going = _start_all(items, d, ends, apart)
    with ThreadPoolExecutor(max(1, len(items)), thread_name_prefix="htap-sync-apart") as pool:
        alone = [(index, pool.submit(step)) for index, step in apart]
        late = _send_together(going, d, ends)
        alone += [(index, pool.submit(step)) for index, step in late]
        for index, future in alone:
            try:
                ends[index] = future.result()
            except Exception as exc:  # that ticket's, reported by the task
                ends[index] = exc
    return [end if end is not None else RuntimeError("no outcome") for end in ends]


def _start_all(
    items: Sequence[Item],
    d: Delivery,
    ends: list[End | None],
    apart: list[tuple[int, Callable[[], Outcome]]],
) -> list[Going]:
    """Check every message and start the valid ones in one store step. Fills ``ends`` for
    tickets that end here and ``apart`` with those that go on alone; returns the tickets
    marked to send now."""
    checked = []
    for index, (ticket, run, payload) in enumerate(items):
        found = check(ticket, run, payload, d)
        if isinstance(found, Outcome):
            ends[index] = found
        else:
            checked.append((index, *found))
    starts = d.store.start_many(
        [call for _, _, call in checked],
        lease_s=d.settings.lease_s,
        replicas=d.replicas(),
        wait_s=d.settings.redis.wait_timeout_s,
    )
    going: list[Going] = []
    for (index, request, call), started in zip(checked, starts, strict=True):
        own = own_start(call, started, d)
        if isinstance(own, Outcome):
            ends[index] = own
        elif _common(request, own):
            going.append((index, request, own, call.limits))
        else:
            apart.append((index, partial(carry_on, request, own, call.limits, d)))
    return going


def _common(request: ReplicationRequest, started: Started) -> bool:
    """Whether a ticket takes the common path: marked to go now, and a plain request (a
    configured one is created in two phases, alone through ``carry_on``)."""
    go_now = started.verdict == "marked" and started.unreplicated is None
    return go_now and started.wait_s <= 0 and not request.configured


def _send_together(
    going: list[Going], d: Delivery, ends: list[End | None]
) -> list[tuple[int, Callable[[], Outcome]]]:
    """Send the create calls of ``going`` together; record the tasks made in one store step.
    Returns the failed calls' next steps (to run alone)."""
    started_at = time.monotonic()
    answers = d.client.create_replications([request for _, request, _, _ in going])
    took_s = time.monotonic() - started_at
    for answer in answers:
        if isinstance(answer, redis.RedisError):
            raise answer  # an auth's token store: the batch is given back (in doubt: looked up)
    late: list[tuple[int, Callable[[], Outcome]]] = []
    made: list[tuple[int, FinishCall]] = []
    for (index, request, started, limits), answer in zip(going, answers, strict=True):
        claim = started.claim
        if not isinstance(answer, ApiError | Created):
            ends[index] = answer  # a bug: the task fails the ticket visibly
            continue
        # Timed as the batch's calls went: together. A success tells the breaker with the
        # finish (report_ok=False), as alone.
        error = answer if isinstance(answer, ApiError) else None
        logged = call_log(claim, "create")
        heard(d.gate, request.project_id, "create", took_s, error, answer, logged, report_ok=False)
        if isinstance(answer, ApiError):
            late.append((index, partial(create_failed, request, claim, answer, d, sent=True)))
            continue
        follow = follow_created(d.enroll, claim.ticket, request, answer.job_id)
        made_note = note("create", "created", request_id=answer.request_id)
        made.append((index, FinishCall(claim, answer.job_id, made_note, limits, follow)))
    stored = record_created([call for _, call in made], d, many=True) if made else []
    for (index, call), ok in zip(made, stored, strict=True):
        if not ok:
            ends[index] = Outcome("skipped", reason="lost the ticket")
            continue
        finished(call.claim, "succeeded", d.clock)
        ends[index] = Outcome("finished", reason="created")
    return late
