"""Recording the tasks a delivery's create calls made, so that a failover cannot lose them.

A created task's success is called finished only once it is stored, on the replicas the
in-doubt mark had to reach (with sentinels: at least one). Redis replicates asynchronously:
an old master that a failover left behind may still take writes for a moment and then drop
them. A success it took that no replica acknowledged is written again until one does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import redis

from htap_sync.common.models import TicketState
from htap_sync.common.tickets.claims import FinishCall, NotReplicated
from htap_sync.worker.delivery.start import Delivery

log = logging.getLogger("htap_sync.worker")
# How long a delivery writes a created task's result again while the replicas do not
# acknowledge it (a failover): longer than a Sentinel failover takes.
RECORD_RETRY_S = 30.0


def record_created(calls: Sequence[FinishCall], d: Delivery, *, many: bool) -> list[bool]:
    """Record the tasks a delivery's create calls made; for each, whether its success is
    stored. None is called finished before then.

    The success must reach the replicas the in-doubt mark had to reach (``d.replicas()``).
    While they do not acknowledge it (a failover under way: the old master may still take
    writes it will lose), it is written again, on whatever master the sentinels name by then:
    the new master's copy of the ticket still holds this delivery's claim and mark, so the
    success lands there, job id and all. After ``RECORD_RETRY_S`` the error passes up: the
    message is given back, and the next delivery reconciles (a task that exists is found).
    """
    wanted, wait_s = d.replicas(), d.settings.redis.wait_timeout_s
    deadline = d.clock() + RECORD_RETRY_S
    again = False
    while True:
        try:
            if many:  # a batch's: one step for all (finish_many.lua)
                done = d.store.finish_many(calls, replicas=wanted, wait_s=wait_s)
            else:
                done = [d.store.finish(call, replicas=wanted, wait_s=wait_s) for call in calls]
            if again:  # a write refused now may be the one that took before: look (a read
                # the replicas hold: a success only the old master took is not one)
                done = [ok or _succeeded(call, d) for ok, call in zip(done, calls, strict=True)]
        except (NotReplicated, redis.ConnectionError, redis.ResponseError) as exc:
            if d.clock() >= deadline:
                raise
            log.warning("tasks made, results not stored yet (%s): writing them again", exc)
            again = True
            time.sleep(min(1.0, wait_s))
            continue
        return done


def _succeeded(call: FinishCall, d: Delivery) -> bool:
    """The ticket holds this delivery's success (a write made before, acknowledged late)."""
    status = d.store.get(call.claim.ticket)
    return status.state is TicketState.SUCCEEDED and status.job_id == call.job_id
