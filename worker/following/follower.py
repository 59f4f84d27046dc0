"""Follows created tasks to their end: one round per instance, one list call per round.

Every worker process runs a :class:`Follower` thread. Each look claims the instances whose
round is due (one worker per instance per round, however long the round takes: its claim is
renewed while it runs, and fenced), then for each: one list call (paged by 100, a token a page)
for all its followed tickets, a jobs call for a ticket whose create job can still say
something, a configuration call for a listed task stuck before syncing after its job ended.
Every call passes the fleet's gate (its own bucket per API, the endpoint's breaker). A wait
for the gate or a failing call moves the instance's round later; nothing is lost, because the
follow structures live in Redis.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TypeVar

import redis

from htap_sync.common.errors import ApiError
from htap_sync.common.limits.gate import Api, CallGate, MustWait
from htap_sync.common.sync_info import SyncInfo, SyncState
from htap_sync.worker import metrics
from htap_sync.worker.api.client import Job, TaskRow, TaurusClient
from htap_sync.worker.delivery.settle import gated
from htap_sync.worker.following.judge import (
    Evidence,
    Followed,
    awaits_job_reason,
    judge,
    needs_configuration,
    needs_job,
    shows_failure,
)
from htap_sync.worker.following.store import FollowStore, Round
from htap_sync.worker.threads import BackgroundLoop

log = logging.getLogger("htap_sync.follow")
T = TypeVar("T")


class Follower(BackgroundLoop):
    """Runs follow rounds for the fleet (a thread per worker process).

    A round holds its instance's claim for as long as it runs, whatever its calls take: a
    keeper thread renews the claims of the rounds in progress every third of ``hold_s``. The
    claim's fencing token goes with every write, so a round that lost its claim anyway (its
    process stalled, Redis went away) writes nothing.

    Args:
        store: the follow structures.
        client: the API client.
        gate: the fleet's rate limit and breaker.
        interval_s: the pause between two rounds of one instance.
        clock: epoch seconds (tests inject one).
        hold_s: how long a claim lasts without renewal (default: the interval, 5 s at least).
    """

    def __init__(
        self,
        store: FollowStore,
        client: TaurusClient,
        gate: CallGate,
        *,
        interval_s: float,
        clock: Callable[[], float] = time.time,
        hold_s: float | None = None,
    ) -> None:
        super().__init__("follower")
        self._store = store
        self._client = client
        self._gate = gate
        self._interval_s = interval_s
        self._clock = clock
        self._hold_s = hold_s if hold_s is not None else max(interval_s, 5.0)
        self._keeper = ClaimKeeper(store, hold_s=self._hold_s, clock=clock)

    def run_once(self) -> int:
        """Run every round due now; returns how many instances had one."""
        claims = self._store.claim_due(self._clock(), hold_s=self._hold_s)
        for claimed in claims:
            with self._keeper.holding(claimed):
                self.round(claimed)
        return len(claims)

    def round(self, claimed: Round) -> None:
        """One round on one instance (``project_id/instance_id``), under its claim."""
        project_id, instance_id = claimed.ref.split("/", 1)
        items = self._store.members(claimed.ref)
        if not items:
            self._store.schedule(claimed, self._clock())
            return
        lane, tenant = round_lane(items)
        try:
            rows = self._call(
                project_id,
                "list",
                lambda: self._client.list_replications(
                    project_id,
                    instance_id,
                    before_page=lambda: self._gate.before_call(project_id, "list", lane, tenant),
                ),
                lane,
                tenant,
            )
        except MustWait as wait:
            self._store.schedule(claimed, self._clock() + wait.wait_s)
            return
        except ApiError as exc:
            self._judge_all(claimed, items, {}, call_error=str(exc))
            self._store.schedule(claimed, self._clock() + self._interval_s)
            return
        self._judge_all(claimed, items, _by_name(rows), call_error=None)
        self._store.schedule(claimed, self._clock() + self._interval_s)

    def _judge_all(
        self,
        claimed: Round,
        items: list[Followed],
        rows: dict[str, TaskRow],
        *,
        call_error: str | None,
    ) -> None:
        project_id, instance_id = claimed.ref.split("/", 1)
        gate_open = call_error is None
        # The tasks the list shows failed first: their verdicts wait for their jobs' reasons,
        # so their jobs calls take the round's tokens before those that can wait.
        items = sorted(items, key=lambda item: not shows_failure(rows.get(item.task_name)))
        for item in items:
            seen = Evidence(row=rows.get(item.task_name), call_error=call_error)
            if gate_open:
                try:
                    seen = self._look_closer(project_id, instance_id, item, seen)
                except MustWait:
                    gate_open = False  # the rest of this instance waits for the next round
            now = self._clock()
            info = judge(item, seen, now=now)
            waits = awaits_job_reason(item, seen, now=now)
            since = (item.failing_since or now) if waits else None
            if not self._store.record(claimed, item, info, failing_since=since):
                return  # the claim was lost, or the ticket left: nothing more to write here
            if info.state.final:
                _report(item, instance_id, info)

    def _look_closer(
        self, project_id: str, instance_id: str, item: Followed, seen: Evidence
    ) -> Evidence:
        """The jobs and configuration calls one ticket still needs (MustWait passes up)."""
        job: Job | None = None
        alter_error: str | None = None
        try:
            if needs_job(item, seen.row) and item.job_id is not None:
                job_id = item.job_id
                job = self._call(
                    project_id,
                    "jobs",
                    lambda: self._client.get_job(project_id, job_id),
                    item.lane,
                    item.tenant,
                )
            if needs_configuration(item, seen.row, job):
                config = self._call(
                    project_id,
                    "configuration",
                    lambda: self._client.get_configuration(project_id, instance_id, item.task_name),
                    item.lane,
                    item.tenant,
                )
                error = (config or {}).get("last_error_of_alter_table")
                alter_error = str(error) if error else None
        except ApiError as exc:
            return Evidence(row=seen.row, job=job, call_error=str(exc))
        return Evidence(row=seen.row, job=job, alter_error=alter_error)

    def _call(
        self,
        project_id: str,
        api: Api,
        call: Callable[[], T],
        lane: str | None = None,
        tenant: str | None = None,
    ) -> T:
        self._gate.before_call(project_id, api, lane, tenant)
        return gated(self._gate, project_id, api, call)

    def start(self) -> None:
        """Start the follower's thread and its claim keeper."""
        self._keeper.start()
        super().start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop both threads."""
        super().stop(timeout_s)
        self._keeper.stop(timeout_s)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except redis.RedisError as exc:  # Redis restarting: keep trying, never die
                log.warning("follow: Redis unavailable: %s", exc)
            except Exception:  # a bug in one round must not end following for the process
                log.exception("follow round failed")
            self._stop.wait(min(self._interval_s, 1.0))


def round_lane(items: list[Followed]) -> tuple[str | None, str | None]:
    """The lane (and tenant) an instance's list call asks the gate in: a round that follows
    any ticket not in the bulk lane serves it, ahead of bulk work; a round of bulk tickets
    only asks as bulk, for the tenant with most tickets there (the first by name on a tie)."""
    if not items:
        return None, None
    if any(item.lane != "bulk" for item in items):
        return "interactive", None
    tenants = Counter(item.tenant for item in items if item.tenant is not None)
    tenant = min(tenants, key=lambda name: (-tenants[name], name)) if tenants else None
    return "bulk", tenant


def _report(item: Followed, instance_id: str, info: SyncInfo) -> None:
    """Count and log a final verdict (a failure at WARNING, with its reason)."""
    metrics.FOLLOWED.labels(info.state.value).inc()
    level = logging.INFO if info.state is SyncState.SYNCING else logging.WARNING
    log.log(
        level,
        "ticket %s: task %s/%s is %s%s",
        item.ticket,
        instance_id,
        item.task_name,
        info.state.value,
        f" ({info.fail_reason})" if info.fail_reason else "",
        extra={
            "ticket": item.ticket,
            "task": f"{instance_id}/{item.task_name}",
            "sync_state": info.state.value,
            "reason": info.fail_reason,
        },
    )


class ClaimKeeper(BackgroundLoop):
    """Renews the claims of the rounds in progress, every third of their hold."""

    def __init__(self, store: FollowStore, *, hold_s: float, clock: Callable[[], float]) -> None:
        super().__init__("follow-claims")
        self._store = store
        self._hold_s = hold_s
        self._clock = clock
        self._lock = threading.Lock()
        self._held: set[Round] = set()

    @contextlib.contextmanager
    def holding(self, claimed: Round) -> Iterator[None]:
        """Keep ``claimed`` renewed while the block runs."""
        with self._lock:
            self._held.add(claimed)
        try:
            yield
        finally:
            with self._lock:
                self._held.discard(claimed)

    def renew_all(self) -> int:
        """Renew every claim held now; returns how many are still this process's."""
        with self._lock:
            held = list(self._held)
        until = self._clock() + self._hold_s
        return sum(self._store.renew(claimed, until) for claimed in held)

    def _loop(self) -> None:
        while not self._stop.wait(self._hold_s / 3):
            try:
                self.renew_all()
            except redis.RedisError as exc:  # the round's writes are fenced: nothing breaks
                log.warning("follow: could not renew round claims: %s", exc)


def _by_name(rows: list[TaskRow]) -> dict[str, TaskRow]:
    """The row of each task name; a live row wins over a cancelled one of the same name."""
    found: dict[str, TaskRow] = {}
    for row in rows:
        if row.task_name not in found or found[row.task_name].cancelled:
            found[row.task_name] = row
    return found
