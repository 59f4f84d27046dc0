"""Run one scenario: start its fleet, submit its rows, inject its faults while watching every
ticket, wait (bounded) for the tickets and their tasks to finish, and measure one row."""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from bench.fixtures import PROJECT, SOURCE, settings_from_env, tag
from bench.soak import measure
from bench.soak.fleet import BURST, RATE_PER_S, Fleet
from bench.soak.measure import Fault, Row, Sample, Seen
from bench.soak.scenarios import RETRY_AFTER_S, Scenario, Trigger
from htap_sync.common.connections import make_redis
from htap_sync.common.keys import Keys
from htap_sync.common.limits.bucket import RedisBucketStore
from htap_sync.common.models import TicketStatus
from htap_sync.producer.api import Producer
from htap_sync.simulator.lifecycle import JOB_FAIL_REASON

INSTANCES = tuple(f"{n:032d}in17" for n in range(1, 9))  # 8 HTAP instances share the rows
POLL_S = 0.5
FOLLOW_GRACE_S = 40.0  # after the last ticket is done: 4 rounds at the README's 10 s interval
_STARTED = time.monotonic()


def progress(message: str) -> None:
    """A progress line on stderr, with the seconds since the soak started."""
    print(f"[{time.monotonic() - _STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)


def rows_for(run: str, count: int) -> list[dict[str, str]]:
    """``count`` valid requests spread over :data:`INSTANCES`, named after ``run``."""
    return [
        {
            "project_id": PROJECT,
            "instance_id": INSTANCES[n % len(INSTANCES)],
            "source_instance_id": SOURCE,
            "source_database": f"db_{n:04d}",
            "target_database": f"olap_{n:04d}",
            "task_name": f"{run}_{n:04d}",
        }
        for n in range(count)
    ]


def submit(producer: Producer, scenario: Scenario, run: str) -> dict[str, tuple[str, str]]:
    """Enqueue the rows (``enqueue_many`` or one ``enqueue`` each): ticket -> its task."""
    rows = rows_for(run, scenario.rows)
    if scenario.path == "batched":
        results = list(producer.enqueue_many(rows))
        refused = [r.status for r in results if not r.accepted]
        if refused:
            raise RuntimeError(f"rows refused: {Counter(refused)}")
        return {
            str(r.ticket): (row["instance_id"], row["task_name"])
            for r, row in zip(results, rows, strict=True)
        }
    tickets = {}
    for row in rows:
        tickets[producer.enqueue(row).ticket] = (row["instance_id"], row["task_name"])
    return tickets


def _error(status: TicketStatus | None) -> str | None:
    if status is None or status.error is None:
        return None
    return f"{status.error.http_status} {status.error.error_code}: {status.error.error_msg[:120]}"


class Watch:
    """Looks at every ticket, keeps the timeline of done and succeeded counts."""

    def __init__(
        self,
        producer: Producer,
        tickets: dict[str, tuple[str, str]],
        allowed: Callable[[], float | None] = lambda: None,
    ) -> None:
        self.producer = producer
        self.allowed = allowed
        self.tickets = tickets
        self.last: dict[str, TicketStatus | None] = dict.fromkeys(tickets)
        self.timeline: list[Sample] = []
        self.events: list[str] = []  # what was injected when, for the notes
        self.started = time.time()  # the rows were just submitted
        self.succeeded_at: dict[str, float] = {}

    def look(self, ride_out_s: float = 0.5) -> None:
        """Read every ticket once; a Redis that does not answer leaves the last look as it was."""
        try:
            self.last = self.producer.statuses(list(self.tickets), ride_out_s=ride_out_s)
        except redis.RedisError:
            return
        now = time.time()
        for ticket, status in self.last.items():
            if status is not None and status.state.value == "succeeded":
                self.succeeded_at.setdefault(ticket, now)
        states = Counter(s.state.value if s else None for s in self.last.values())
        done = states["succeeded"] + states["failed"]
        try:
            allowed = self.allowed()
        except redis.RedisError:
            allowed = None
        self.timeline.append(Sample(now, done, states["succeeded"], allowed))

    @property
    def done(self) -> int:
        return self.timeline[-1].done if self.timeline else 0

    def all_followed(self) -> bool:
        """Every ticket done, and every succeeded one's task no longer followed."""
        return self.done == len(self.tickets) and measure.left_following(self.seen()) == 0

    def seen(self) -> list[Seen]:
        """Every ticket as last read."""
        out = []
        for ticket, (instance, task) in self.tickets.items():
            status = self.last.get(ticket)
            sync = status.sync if status else None
            out.append(
                Seen(
                    ticket,
                    instance,
                    task,
                    status.state.value if status else None,
                    sync.state.value if sync else None,
                    sync.fail_reason if sync else None,
                    _error(status),
                    status.attempts if status else 0,
                    self.succeeded_at.get(ticket),
                    bool(status and status.reconciled),
                )
            )
        return out

    def last_429_at(self) -> float | None:
        """When the last create answered 429 (wall-clock s), from the tickets' histories."""
        times = [
            a.at.timestamp()
            for s in self.last.values()
            if s is not None
            for a in s.history
            if a.http_status == 429
        ]
        return max(times, default=None)


def _inject(fleet: Fleet, scenario: Scenario, watch: Watch, pending: list[Trigger]) -> list[Fault]:
    """Inject the faults whose trigger is due now; take their triggers off ``pending``."""
    faults = []
    for trigger in list(pending):
        elapsed = time.time() - watch.started
        if watch.done >= trigger.at_progress * scenario.rows or elapsed >= trigger.latest_s:
            pending.remove(trigger)
            faults.append(trigger.act(fleet))
            watch.events.append(
                f"{faults[-1].name} at {watch.done}/{scenario.rows} done, {elapsed:.0f} s in"
            )
            progress(f"  {watch.events[-1]}")
    return faults


def drive(fleet: Fleet, scenario: Scenario, watch: Watch) -> list[Fault]:
    """Watch until every ticket is done and followed (or the scenario gives up), injecting
    each trigger's fault when its time comes. Returns the faults, in order."""
    give_up = watch.started + scenario.max_s
    pending = list(scenario.triggers)
    faults: list[Fault] = []
    follow_until: float | None = None
    while time.time() < give_up:
        watch.look()
        faults += _inject(fleet, scenario, watch, pending)
        if not pending and watch.done == scenario.rows:
            follow_until = follow_until or min(time.time() + FOLLOW_GRACE_S, give_up)
            if watch.all_followed() or time.time() >= follow_until:
                break
        time.sleep(POLL_S)
    watch.look(ride_out_s=10.0)
    if pending:
        watch.events.append(f"{len(pending)} fault(s) never injected: out of time")
        progress(f"  {watch.events[-1]}")
    return faults


def _notes(
    scenario: Scenario, watch: Watch, fleet: Fleet, stats: dict[str, Any], tasks: list[Any]
) -> list[str]:
    seen = watch.seen()
    ran_s = watch.timeline[-1].at - watch.timeline[0].at
    notes = ["; ".join([f"ran {ran_s:.0f} s of its {scenario.max_s:.0f} s cap", *watch.events])]
    open_ = [s for s in seen if s.state not in measure.FINAL_TICKET]
    if open_:
        listed = ", ".join(f"{k} {n}" for k, n in Counter(str(s.state) for s in open_).items())
        never = sum(1 for s in open_ if s.attempts == 0)
        notes.append(f"not done at the end: {listed} ({never} of them with 0 attempts)")
    due_by = watch.timeline[-1].at - FOLLOW_GRACE_S
    if not_due := measure.left_following(seen) - measure.left_following(seen, due_by):
        notes.append(
            f"{not_due} more following, succeeded under {FOLLOW_GRACE_S:.0f} s before the end"
        )
    failed = sum(1 for s in seen if s.state == "failed")
    syncs = Counter(str(s.sync_state) for s in seen if s.state == "succeeded")
    notes.append(
        f"failed tickets {failed}; sync states "
        + ", ".join(f"{k} {n}" for k, n in sorted(syncs.items()))
    )
    if unaskable := measure.reconciled_failed_jobs(seen, tasks):
        notes.append(
            f"{unaskable} more tasks whose create job failed were found by reconciliation (their"
            " create answer lost): no job id, so no job to ask for its reason"
        )
    if errors := measure.false_failure_errors(seen, tasks):
        notes.append("false failures: " + "; ".join(f"{e} ({n})" for e, n in errors.items()))
    if fall := measure.largest_fall(watch.timeline):
        notes.append(f"the succeeded count fell by {fall} at one point")
    if dead := fleet.workers_dead():
        notes.append(f"workers that died by themselves: {', '.join(dead)}")
    answers = ", ".join(f"{code}: {n}" for code, n in stats["create_answers"].items())
    notes.append(
        f"simulator: {stats['created']} tasks created; create answers {answers};"
        f" injected faults {stats['faults'] or 'none'}"
    )
    return notes


def measure_row(scenario: Scenario, fleet: Fleet, watch: Watch, faults: list[Fault]) -> Row:
    """Read what the simulator saw and compute the scenario's row."""
    stats = fleet.sim("/_sim/stats")
    tasks = fleet.sim("/_sim/tasks")["tasks"]
    calls = {
        "create": fleet.sim("/_sim/create-calls")["times"],
        "list": measure.calls_json_times(fleet.sim("/_sim/list-calls")["instances"]),
        "jobs": measure.calls_json_times(fleet.sim("/_sim/job-calls")["instances"]),
    }
    if scenario.throttled and (last := watch.last_429_at()) is not None:
        faults = [*faults, Fault("429s", last + RETRY_AFTER_S)]
    seen = watch.seen()
    return Row(
        scenario=scenario.name,
        path=scenario.path,
        rows=scenario.rows,
        lost=measure.lost(seen),
        created_twice=measure.created_twice(stats),
        false_failures=measure.false_failures(seen, tasks),
        left_following=measure.left_following(seen, watch.timeline[-1].at - FOLLOW_GRACE_S),
        reasons_kept=measure.reasons_kept(seen, tasks, JOB_FAIL_REASON),
        drains=measure.drains(faults, watch.timeline, scenario.rows, RATE_PER_S),
        peaks=measure.peaks(calls),
        limit=int(RATE_PER_S) + BURST,
        notes=tuple(_notes(scenario, watch, fleet, stats, tasks)),
    )


def create_bucket(fleet: Fleet) -> Callable[[], float | None]:
    """Reads the rate the fleet's create bucket allows now (see ``Sample.allowed_per_s``)."""
    settings = settings_from_env(fleet.env)
    client = make_redis(settings)
    key = Keys(settings.key_prefix).bucket(settings.cloud.require_endpoint, PROJECT, "create")
    store = RedisBucketStore(client)

    def allowed() -> float | None:
        state = store.state(key)
        if state is None:
            return None
        seconds, micros = client.time()
        return 0.0 if state.blocked_until > seconds + micros / 1e6 else state.rate

    return allowed


def run(scenario: Scenario, logs: Path) -> Row:
    """Run ``scenario`` on a fleet of its own (logs under ``logs``) and return its row."""
    run_tag = tag(f"soak_{scenario.key}")
    fleet = Fleet(logs / scenario.key, run_tag, scenario.sim_args, sentinel=scenario.sentinel)
    progress(f"--- {scenario.name}: starting the fleet")
    try:
        fleet.start()
        producer = Producer(settings_from_env(fleet.env))
        try:
            return _soak(scenario, fleet, producer, run_tag)
        finally:
            producer.close()
    finally:
        fleet.stop()  # whatever started, even when the start itself failed


def _soak(scenario: Scenario, fleet: Fleet, producer: Producer, run_tag: str) -> Row:
    tickets = submit(producer, scenario, run_tag)
    progress(f"  {len(tickets)} rows submitted ({scenario.path} path)")
    watch = Watch(producer, tickets, create_bucket(fleet))
    faults = drive(fleet, scenario, watch)
    row = measure_row(scenario, fleet, watch, faults)
    progress(f"  done: lost {row.lost}, twice {row.created_twice}, following {row.left_following}")
    return row
