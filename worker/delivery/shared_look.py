"""An operation ticket's look at its task's row, sharing list calls per instance (issue #22).

Each look needs the row from a list call that *started* after a moment of the ticket's own,
noted as a number of the instance's list counter (``look_after``; each list call takes the
next number before it is sent, so a number above the noted one proves the call started later):

- the look before acting: after the ticket was submitted (noted by the submission). That is
  what a user expects (the list as it is once they asked); an older list could show a task
  created since as absent (a delete done without sending) or a pause undone since as paused;
- the look after its call was answered: after the answer (noted by ``operation_sent``). An
  older list may still show the task, or its old stage; it could never prove the call done;
- each later look: after the list call the previous look used (each round sees news);
- a delivery in doubt without a job (its call's answer was lost): after this delivery began.

A look reads the instance's snapshot (one HMGET): fresh enough, its row decides. Otherwise the
delivery becomes the instance's lister (one at a time across the fleet), lists every page
through the gate (a token a page), keeps the rows as the snapshot for the others, and decides
on them. While another lister works, the ticket waits a little in the delayed set (no worker
slot held) and reads the snapshot then. So a round of looks over N tasks of an instance costs
about one list call, not N.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from htap_sync.common.limits.gate import MustWait
from htap_sync.common.models import OperationRequest
from htap_sync.common.operations import instance_of
from htap_sync.common.tickets.claims import Claim
from htap_sync.worker.api.client import TaskRow
from htap_sync.worker.delivery.settle import observed
from htap_sync.worker.delivery.start import Delivery

# What a snapshot keeps of each row: the predicates' fields, and the task's identity.
ROW_FIELDS = (
    "task_name",
    "id",
    "task_id",
    "source_database",
    "target_database",
    "stage",
    "status",
    "percentage",
)
MIN_SNAPSHOT_TTL_S = 60.0


@dataclass(frozen=True)
class Look:
    """A look's answer: the number of the list call it used, the task's row (None: absent)."""

    epoch: int
    row: TaskRow | None


def look_after(op: OperationRequest, claim: Claim, job_id: str, d: Delivery) -> int:
    """The number a list call must be above for this delivery's look (see the module)."""
    after = d.store.look_after(claim.ticket)
    if claim.in_doubt and not job_id:
        after = max(after, d.store.list_epoch(instance_of(op)))
    return after


def look(op: OperationRequest, claim: Claim, d: Delivery, *, after: int) -> Look:
    """The task's row from a list call numbered above ``after``: the instance's snapshot, or
    this delivery's own list call.

    Raises:
        MustWait: another worker lists the instance now ("list"), or the gate's wait.
        ApiError: the list call failed (nothing kept).
    """
    ref = instance_of(op)
    found = d.store.listed(ref, op.task_name, after=after)
    if found is not None:
        return Look(found.epoch, _row(found.row))
    claimed = d.store.claim_list(ref, hold_s=d.settings.lease_s)
    if claimed is None:
        interval_s = d.settings.following.interval_s
        raise MustWait(min(interval_s, 1.0) * (0.5 + d.rng.random() / 2), "list")
    epoch, token = claimed
    try:
        rows = _list(op, claim, d)
    except BaseException:
        d.store.release_list(ref, token)
        raise
    ttl_s = max(MIN_SNAPSHOT_TTL_S, 6 * d.settings.following.interval_s)
    d.store.record_list(ref, epoch, token, rows, ttl_s=ttl_s)
    return Look(epoch, _row(rows.get(op.task_name)))


def _list(op: OperationRequest, claim: Claim, d: Delivery) -> dict[str, str]:
    """Every row of the instance, every page through the gate: task name -> compact row."""
    d.gate.before_call(op.project_id, "list")
    d.store.renew(claim, lease_s=d.settings.lease_s)
    rows = observed(
        claim,
        "list",
        lambda: list(
            d.client.iter_replications(
                op.project_id,
                op.instance_id,
                before_page=lambda: d.gate.before_call(op.project_id, "list"),
            )
        ),
        d.gate,
        op.project_id,
    )
    return compact(rows)


def compact(rows: Iterable[TaskRow]) -> dict[str, str]:
    """Each task name's row as JSON (a live one first: a Cancelled one only when no live one
    is listed, as a delete still removes it), with the fields of :data:`ROW_FIELDS`."""
    chosen: dict[str, TaskRow] = {}
    for row in rows:
        kept = chosen.get(row.task_name)
        if kept is None or (kept.cancelled and not row.cancelled):
            chosen[row.task_name] = row
    return {
        name: json.dumps(
            {k: row.raw[k] for k in ROW_FIELDS if k in row.raw} or _fields(row),
            separators=(",", ":"),
        )
        for name, row in chosen.items()
    }


def _fields(row: TaskRow) -> dict[str, str | None]:
    """A row built without its API object (tests): its typed fields."""
    return {
        "task_name": row.task_name,
        "source_database": row.source_database,
        "target_database": row.target_database,
        "stage": row.stage,
        "status": row.status,
    }


def _row(text: str | None) -> TaskRow | None:
    return None if text is None else TaskRow.from_api(json.loads(text))
