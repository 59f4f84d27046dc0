"""The simulator's memory: sync tasks, the counters tests assert on, and scripted faults."""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from htap_sync.simulator.arrivals import ARRIVALS_CAP, ArrivalLog
from htap_sync.simulator.arrivals import max_in_window as max_in_window
from htap_sync.simulator.arrivals import observed_rate as observed_rate
from htap_sync.simulator.calls import CallLog
from htap_sync.simulator.faults import CreateFault, FaultStep
from htap_sync.simulator.lifecycle import Lifecycle
from htap_sync.simulator.selection import CheckBody
from htap_sync.simulator.tokens import IssuedToken, TokenStore

# (project_id, instance_id): tasks live per HTAP instance, as on the real service.
InstanceKey = tuple[str, str]


@dataclass(frozen=True)
class Task:
    """One data-sync task as the simulator stores it."""

    project_id: str
    instance_id: str
    task_name: str
    source_instance_id: str
    source_node_id: str | None
    source_database: str
    target_database: str
    job_id: str  # "" for a configured task (a configuration check answers no job id)
    check: CheckBody | None = None  # a configured task's configuration (or its last modify)
    tables_changed: bool = False  # a modify changed table_repl_config

    @property
    def key(self) -> tuple[str, str, str]:
        """(project, instance, task name): the task's identity."""
        return (self.project_id, self.instance_id, self.task_name)

    def to_replication(self, lifecycle: dict[str, Any]) -> dict[str, Any]:
        """Return the task as one entry of the list call's ``replications`` array.

        ``lifecycle`` gives where it stands now (``Lifecycle.row``): stage, status, percentage,
        is_need_repair, is_main_task.
        """
        return {
            "task_name": self.task_name,
            "source_database": self.source_database,
            "target_database": self.target_database,
            **lifecycle,
        }


class SimulatorState:
    """Thread-safe in-memory store shared by the app and the tests that inspect it.

    Every method takes one lock, so a check-and-create is atomic even when uvicorn and a test
    thread touch the store at the same time.

    It also holds the fault script: steps queued by ``script()`` (or ``POST /_sim/script``)
    that the next valid create calls consume in order, before falling back to the rates.

    And it logs when each valid create call arrived and whether the gateway's rate limit
    admitted it (``create_call_times``; measure them with ``max_in_window`` and
    ``observed_rate``, importable from here).

    And the tokens the IAM login issued, with its counters (``tokens``, a ``TokenStore``).
    """

    def __init__(self, *, arrivals_cap: int = ARRIVALS_CAP) -> None:
        """Create an empty store.

        Args:
            arrivals_cap: How many arrival times ``create_call_times`` keeps (the latest).
        """
        self._lock = threading.Lock()
        # dicts keep insertion order, which is the creation order the list call reports.
        self._tasks: dict[InstanceKey, dict[str, Task]] = {}
        # Counted separately from _tasks so a task created twice (after a delete, or by a bug
        # that bypassed the duplicate check) shows 2 even though only one copy is stored.
        self._creations: Counter[tuple[str, str, str]] = Counter()
        self._create_calls = 0
        self._created = 0
        self._create_answers: Counter[int] = Counter()
        self._list_calls = 0
        self._faults: Counter[CreateFault] = Counter()
        self._script: deque[FaultStep] = deque()
        self._arrivals = ArrivalLog(arrivals_cap)
        self._throttled_by_limit = 0
        self.tokens = TokenStore()
        self.lifecycle = Lifecycle()  # make_app replaces it with the configured one
        # Create calls that met an existing name; list and jobs calls per instance.
        self._name_hits: Counter[tuple[str, str, str]] = Counter()
        self.calls = CallLog()
        self._task_calls: Counter[str] = Counter()  # jobs, configuration, delete, pause...

    @property
    def create_calls(self) -> int:
        """Every POST that reached the create route, whatever it was answered."""
        with self._lock:
            return self._create_calls

    @property
    def created(self) -> int:
        """How many tasks were actually created (including any re-creation)."""
        with self._lock:
            return self._created

    @property
    def list_calls(self) -> int:
        """Every GET that reached the list route, whatever it was answered."""
        with self._lock:
            return self._list_calls

    @property
    def throttled_by_limit(self) -> int:
        """Create calls answered 429 by the rate limit (injected ``throttle`` faults aside)."""
        with self._lock:
            return self._throttled_by_limit

    @property
    def logins(self) -> int:
        """IAM logins answered 201 (each issued a token)."""
        return self.tokens.logins

    @property
    def login_failures(self) -> int:
        """IAM logins answered 400 (malformed body) or 401 (wrong account, user or password)."""
        return self.tokens.login_failures

    @property
    def expired_token_rejections(self) -> int:
        """Create or list calls refused 401 because their IAM token had expired."""
        return self.tokens.expired_token_rejections

    def tokens_issued(self) -> list[IssuedToken]:
        """Return every IAM token issued (times, user, project; never the token), in order."""
        return self.tokens.issued()

    def record_create_arrival(self, at: float, *, admitted: bool) -> None:
        """Log a create call that passed auth and validation and met the rate limit.

        Args:
            at: Its arrival time on the rate limiter's monotonic clock, in seconds.
            admitted: False if the rate limit answered it 429.
        """
        with self._lock:
            self._arrivals.add(at, admitted=admitted)
            if not admitted:
                self._throttled_by_limit += 1

    def create_call_times(self, admitted_only: bool = True) -> list[float]:
        """Return the arrival times of valid create calls, in arrival order.

        Args:
            admitted_only: Only the calls the rate limit admitted (the default); False adds
                the throttled ones.

        Only the latest ``arrivals_cap`` of each kind are kept. The times are monotonic
        seconds (``time.monotonic`` unless the app was given another clock).
        """
        with self._lock:
            return self._arrivals.times(admitted_only=admitted_only)

    def create_answers(self) -> dict[int, int]:
        """Return how many create calls got each HTTP status (a dropped call gets none)."""
        with self._lock:
            return dict(self._create_answers)

    def faults_injected(self) -> dict[str, int]:
        """Return how many create calls got each fault, by fault name (``"throttle"``, ...)."""
        with self._lock:
            return {fault.value: n for fault, n in self._faults.items()}

    def record_list_call(self) -> None:
        """Count one GET to the list route; called as soon as it arrives."""
        with self._lock:
            self._list_calls += 1

    def record_instance_list(self, project_id: str, instance_id: str, at: float) -> None:
        """Log a list call of one instance (after its path was checked)."""
        self.calls.record("list", project_id, instance_id, at)

    def list_call_times(self) -> dict[InstanceKey, list[float]]:
        """The arrival times of the list calls of each instance, in order."""
        return {(p, i): t for (p, i), t in self.calls.times("list").items() if i is not None}

    def job_call_times(self) -> dict[tuple[str, str | None], list[float]]:
        """The arrival times of the jobs calls about each instance's jobs, in order.

        Calls about a job id the simulator never issued are under instance None.
        """
        return self.calls.times("jobs")

    def record_task_call(self, route: str) -> None:
        """Count a call to a task route (``jobs``, ``configuration``, ``delete``...)."""
        with self._lock:
            self._task_calls[route] += 1

    def record_name_hit(self, key: tuple[str, str, str]) -> None:
        """Count a create call that met an existing task of the same name."""
        with self._lock:
            self._name_hits[key] += 1

    def name_hits(self, project_id: str, instance_id: str, task_name: str) -> int:
        """How many create calls met that task's name already taken."""
        with self._lock:
            return self._name_hits[(project_id, instance_id, task_name)]

    def task(self, project_id: str, instance_id: str, task_name: str) -> Task | None:
        """One task, if it exists."""
        with self._lock:
            return self._tasks.get((project_id, instance_id), {}).get(task_name)

    def record_fault(self, fault: CreateFault) -> None:
        """Count one injected fault (``CreateFault.NONE`` is not a fault and is ignored)."""
        if fault is not CreateFault.NONE:
            with self._lock:
                self._faults[fault] += 1

    def script(self, steps: Iterable[str | CreateFault | FaultStep]) -> list[str]:
        """Queue faults for the next valid create calls, one step per call, in order.

        Args:
            steps: ``FaultStep`` texts such as ``"throttle:12"``, ``"hang"`` or ``"ok"`` (no
                fault), or ``CreateFault``/``FaultStep`` values.

        Returns:
            Every step still queued, as text, the new ones last.

        Raises:
            ValueError: A step is invalid; the message names it and nothing is queued.
        """
        parsed = [FaultStep.of(step) for step in steps]
        with self._lock:
            self._script.extend(parsed)
            return [str(step) for step in self._script]

    def scripted(self) -> list[str]:
        """Return the steps still queued, as text, next first."""
        with self._lock:
            return [str(step) for step in self._script]

    def clear_script(self) -> None:
        """Drop every queued step; create calls go back to the rates."""
        with self._lock:
            self._script.clear()

    def next_scripted(self) -> FaultStep | None:
        """Take the next queued step, or return None when the script is empty."""
        with self._lock:
            return self._script.popleft() if self._script else None

    def record_create_call(self) -> None:
        """Count one POST to the create route; called as soon as it arrives."""
        with self._lock:
            self._create_calls += 1

    def record_create_answer(self, status_code: int) -> None:
        """Count the HTTP status a create call was answered with."""
        with self._lock:
            self._create_answers[status_code] += 1

    def create_task(self, task: Task) -> bool:
        """Store ``task`` unless its name already exists on that instance.

        Args:
            task: The task to create; its ``job_id`` is the one the caller will answer with.

        Returns:
            True if created, False if a task with that name already exists (nothing changes).
        """
        key = (task.project_id, task.instance_id)
        with self._lock:
            tasks = self._tasks.setdefault(key, {})
            if task.task_name in tasks:
                return False
            tasks[task.task_name] = task
            self._creations[(task.project_id, task.instance_id, task.task_name)] += 1
            self._created += 1
            return True

    def replace_task(self, task: Task) -> bool:
        """Store ``task`` over the existing one of its name (a modify); False if there is none."""
        with self._lock:
            tasks = self._tasks.get((task.project_id, task.instance_id), {})
            if task.task_name not in tasks:
                return False
            tasks[task.task_name] = task
            return True

    def delete_task(self, project_id: str, instance_id: str, task_name: str) -> Task | None:
        """Remove a task (the real API's DELETE); its creation count is kept.

        Returns:
            The removed task, or None if there was none.
        """
        with self._lock:
            return self._tasks.get((project_id, instance_id), {}).pop(task_name, None)

    def creates_for(self, project_id: str, instance_id: str, task_name: str) -> int:
        """Return how many times that task was created (the "exactly once" proof)."""
        with self._lock:
            return self._creations[(project_id, instance_id, task_name)]

    def tasks(self, project_id: str, instance_id: str) -> list[Task]:
        """Return the tasks of one instance in creation order."""
        with self._lock:
            return list(self._tasks.get((project_id, instance_id), {}).values())

    def page(
        self, project_id: str, instance_id: str, *, limit: int, offset: int
    ) -> tuple[int, list[Task]]:
        """Return ``(total, tasks[offset:offset + limit])`` of one instance, read atomically."""
        with self._lock:
            tasks = list(self._tasks.get((project_id, instance_id), {}).values())
        return len(tasks), tasks[offset : offset + limit]

    def tasks_report(self) -> list[dict[str, Any]]:
        """Every live task with its planned end, creations and name hits (``/_sim/tasks``).

        A deleted task leaves this report; its creations still count in ``snapshot()``'s
        ``created_more_than_once``.
        """
        with self._lock:
            tasks = [t for per in self._tasks.values() for t in per.values()]
            counts = {t.key: (self._creations[t.key], self._name_hits[t.key]) for t in tasks}
        report = []
        for task in tasks:
            fate = self.lifecycle.fate(task.key)
            creates, hits = counts[task.key]
            report.append(
                {
                    "project_id": task.project_id,
                    "instance_id": task.instance_id,
                    "task_name": task.task_name,
                    "job_id": task.job_id,
                    "planned": fate.planned if fate else "syncing",
                    "failure": fate.failure if fate else None,
                    "creates": creates,
                    "name_hits": hits,
                    **self.lifecycle.row(task.key),
                }
            )
        return report

    def snapshot(self) -> dict[str, Any]:
        """Return a JSON-able summary for ``GET /_sim/stats``.

        Small on purpose (benchmarks create many tasks): counters (calls, creations, answers by
        status, injected faults by name, 429s of the rate limit), the queued script, tasks per
        instance, every task created more than once (which should always be an empty list),
        and the arrival measures of the whole run: ``observed_rate`` and ``max_in_1s`` of the
        admitted create calls, ``observed_rate_all`` and ``max_in_1s_all`` of every call the
        rate limit saw (see ``simulator.arrivals``; a rate is null when infinite); and the IAM
        counters (``logins``, ``login_failures``, ``expired_token_rejections``) with each issued
        token's ``expires_at`` (``token_expiries``): never a token itself.
        """
        with self._lock:
            return {
                "create_calls": self._create_calls,
                "created": self._created,
                "list_calls": self._list_calls,
                "task_calls": dict(self._task_calls),
                "tasks": sum(len(t) for t in self._tasks.values()),
                "create_answers": {str(k): v for k, v in sorted(self._create_answers.items())},
                "faults": {f.value: n for f, n in sorted(self._faults.items(), key=_by_value)},
                "throttled_by_limit": self._throttled_by_limit,
                **self._arrivals.summary(),
                "script": [str(step) for step in self._script],
                "instances": [
                    {"project_id": p, "instance_id": i, "tasks": len(t)}
                    for (p, i), t in self._tasks.items()
                ],
                "created_more_than_once": [
                    {"project_id": p, "instance_id": i, "task_name": n, "creates": c}
                    for (p, i, n), c in self._creations.items()
                    if c > 1
                ],
                **self.tokens.summary(),
            }


def _by_value(item: tuple[CreateFault, int]) -> str:
    return item[0].value
