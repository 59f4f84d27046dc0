"""What a soak measures, from what it saw: pure functions over plain values (no processes).

A phase hands in every ticket as it ended (:class:`Seen`), the simulator's tasks and stats,
the arrival times of its calls, a timeline of how many tickets were done when, and the faults
it injected with the moment each ended. Out come the figures of one table row (:class:`Row`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from htap_sync.simulator.arrivals import max_in_window

TaskKey = tuple[str, str]  # (instance_id, task_name): one project per soak
FINAL_TICKET = frozenset({"succeeded", "failed"})


@dataclass(frozen=True)
class Seen:
    """One ticket as the soak last read it; ``state`` None when Redis no longer knew it."""

    ticket: str
    instance_id: str
    task_name: str
    state: str | None
    sync_state: str | None = None
    fail_reason: str | None = None
    error: str | None = None  # a failed ticket's error code and message
    attempts: int = 0
    succeeded_at: float | None = None  # when the soak first saw it succeeded (wall-clock s)
    reconciled: bool = False  # found by the list call: no job id, so no job to ask

    @property
    def key(self) -> TaskKey:
        """The task this ticket asks for."""
        return (self.instance_id, self.task_name)


@dataclass(frozen=True)
class Sample:
    """A look at every ticket: when (wall-clock s), how many were done and how many succeeded."""

    at: float
    done: int
    succeeded: int
    # The create calls per second the fleet's bucket allowed at that moment: its effective rate
    # (lowered by the gateway's 429s), 0 while a Retry-After blocks it; None when unread.
    allowed_per_s: float | None = None


@dataclass(frozen=True)
class Fault:
    """A fault the soak injected: its name, when it ended (wall-clock s), the bound's grace."""

    name: str
    ended_at: float
    grace_s: float = 45.0


@dataclass(frozen=True)
class Drain:
    """Seconds from a fault's end until every ticket was done (None: never, in the soak's time),
    against the bound ``left / rate + grace``."""

    fault: str
    seconds: float | None
    bound_s: float
    waited_s: float = 0.0  # from the fault's end until the soak stopped looking
    # The same bound at the rate the bucket allowed on average while draining (the gateway's
    # 429s lower it, by design: "kind to the cloud"), and that rate; None when unread.
    allowed_bound_s: float | None = None
    allowed_per_s: float | None = None
    # An earlier fault's bound still running at this one's end (from this one's end): its
    # leftovers (a killed holder's lease to wait out) are its cost, not this fault's.
    carried_s: float | None = None

    @property
    def met(self) -> bool:
        """True when every ticket was done within the bound (or an earlier fault's, still
        running)."""
        limit = max(self.bound_s, self.carried_s or 0.0)
        return self.seconds is not None and self.seconds <= limit

    @property
    def met_at_allowed(self) -> bool:
        """True when every ticket was done within the bound at the allowed rate."""
        bound = self.allowed_bound_s
        return self.seconds is not None and bound is not None and self.seconds <= bound


@dataclass(frozen=True)
class Row:
    """One scenario's figures: a row of the soak's table."""

    scenario: str
    path: str
    rows: int
    lost: int
    created_twice: int
    false_failures: int
    left_following: int
    reasons_kept: tuple[int, int]
    drains: tuple[Drain, ...]
    peaks: Mapping[str, int]
    limit: int
    notes: tuple[str, ...] = field(default_factory=tuple)

    def broken(self) -> list[str]:
        """The hard guarantees this row breaks (empty when none)."""
        checks = (
            ("lost", self.lost),
            ("created twice", self.created_twice),
            ("false failures", self.false_failures),
        )
        return [f"{self.scenario}: {name} {n}" for name, n in checks if n > 0]


def lost(seen: Iterable[Seen]) -> int:
    """Tickets neither succeeded nor failed at the end (unknown ones included)."""
    return sum(1 for s in seen if s.state not in FINAL_TICKET)


def created_twice(stats: Mapping[str, Any]) -> int:
    """Tasks the simulator created more than once (``/_sim/stats``)."""
    return len(stats.get("created_more_than_once", []))


def task_keys(tasks: Iterable[Mapping[str, Any]]) -> set[TaskKey]:
    """The (instance, task name) of each task of ``/_sim/tasks``."""
    return {(str(t["instance_id"]), str(t["task_name"])) for t in tasks}


def false_failures(seen: Iterable[Seen], tasks: Iterable[Mapping[str, Any]]) -> int:
    """Failed tickets whose task exists on the simulator."""
    exists = task_keys(tasks)
    return sum(1 for s in seen if s.state == "failed" and s.key in exists)


def false_failure_errors(seen: Iterable[Seen], tasks: Iterable[Mapping[str, Any]]) -> Counter[str]:
    """The errors of the false failures, counted."""
    exists = task_keys(tasks)
    return Counter(str(s.error) for s in seen if s.state == "failed" and s.key in exists)


def left_following(seen: Iterable[Seen], due_by: float | None = None) -> int:
    """Succeeded tickets whose task is still followed (sync state ``following``, or none yet).

    With ``due_by``, only those whose follow deadline has passed: seen succeeded at or before
    ``due_by`` (the end minus the follow deadline).
    """
    return sum(
        1
        for s in seen
        if s.state == "succeeded"
        and s.sync_state in (None, "following")
        and (due_by is None or s.succeeded_at is None or s.succeeded_at <= due_by)
    )


def reasons_kept(
    seen: Iterable[Seen], tasks: Iterable[Mapping[str, Any]], job_reason: str
) -> tuple[int, int]:
    """(kept, all): tasks whose create job failed and whose ticket knows its job id, and of
    those the ones whose ticket's sync ``fail_reason`` carries the job's ``job_reason``. A
    reconciled ticket (its create answer lost) has no job id: the API offers no way to its job
    (see :func:`reconciled_failed_jobs`)."""
    by_key = {s.key: s for s in seen}
    failed_jobs = [
        key for key in _failed_jobs(tasks) if key in by_key and not by_key[key].reconciled
    ]
    kept = sum(1 for key in failed_jobs if job_reason in (by_key[key].fail_reason or ""))
    return kept, len(failed_jobs)


def reconciled_failed_jobs(seen: Iterable[Seen], tasks: Iterable[Mapping[str, Any]]) -> int:
    """Tasks whose create job failed, found by reconciliation: their tickets have no job id."""
    reconciled = {s.key for s in seen if s.reconciled}
    return sum(1 for key in _failed_jobs(tasks) if key in reconciled)


def _failed_jobs(tasks: Iterable[Mapping[str, Any]]) -> set[TaskKey]:
    return {
        (str(t["instance_id"]), str(t["task_name"]))
        for t in tasks
        if t.get("failure") == "job_failed"
    }


def all_done_at(timeline: Sequence[Sample], rows: int) -> float | None:
    """When the first look found every ticket done; None if none did."""
    return next((s.at for s in timeline if s.done >= rows), None)


def done_by(timeline: Sequence[Sample], at: float) -> int:
    """Tickets done at the last look at or before ``at`` (0 before the first look)."""
    done = 0
    for sample in timeline:
        if sample.at > at:
            break
        done = sample.done
    return done


def drains(
    faults: Iterable[Fault], timeline: Sequence[Sample], rows: int, rate_per_s: float
) -> tuple[Drain, ...]:
    """Each fault's drain time and bound: ``(tickets left at its end) / rate + grace``, and
    the longest bound of an earlier fault still running at its end (``carried_s``).

    A fault that ended after every ticket was done drained in 0 s. ``waited_s`` runs to the
    timeline's last look.
    """
    finished = all_done_at(timeline, rows)
    last = timeline[-1].at if timeline else 0.0
    out: list[Drain] = []
    ends: list[float] = []  # when each earlier fault's bound runs out
    for fault in faults:
        left = rows - done_by(timeline, fault.ended_at)
        seconds = None if finished is None else max(0.0, finished - fault.ended_at)
        bound = left / rate_per_s + fault.grace_s
        allowed = mean_allowed(timeline, fault.ended_at, finished if finished else last)
        at_allowed = left / allowed + fault.grace_s if allowed else None
        waited = max(0.0, last - fault.ended_at)
        running = [end - fault.ended_at for end in ends if end > fault.ended_at]
        carried = max(running) if running else None
        out.append(Drain(fault.name, seconds, bound, waited, at_allowed, allowed, carried))
        ends.append(fault.ended_at + bound)
    return tuple(out)


def mean_allowed(timeline: Sequence[Sample], start: float, end: float) -> float | None:
    """The mean rate the bucket allowed over the looks from ``start`` to ``end`` (None when
    none of them read it)."""
    rates = [
        s.allowed_per_s for s in timeline if start <= s.at <= end and s.allowed_per_s is not None
    ]
    return sum(rates) / len(rates) if rates else None


def largest_fall(timeline: Sequence[Sample]) -> int:
    """The most the succeeded count ever fell below its earlier peak (0: it never fell)."""
    peak = fall = 0
    for sample in timeline:
        peak = max(peak, sample.succeeded)
        fall = max(fall, peak - sample.succeeded)
    return fall


def calls_json_times(instances: Iterable[Mapping[str, Any]]) -> list[float]:
    """Every time of a ``/_sim/list-calls`` or ``/_sim/job-calls`` answer, all instances."""
    return [float(t) for entry in instances for t in entry.get("times", [])]


def peaks(calls: Mapping[str, Iterable[float]]) -> dict[str, int]:
    """The most calls of each API in any one-second window."""
    return {api: max_in_window(list(times)) for api, times in calls.items()}
