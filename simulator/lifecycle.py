"""How a created task lives on, as the live service shows it (taurus-api.md section 7).

A task moves ``Wait`` -> ``Full`` -> ``Incremental`` over configured seconds, unless it was
drawn to fail: a share of tasks (``sync_fail_rate``) fails, each in one of the ways the service
shows a failure: its create job ends ``Failed`` with a ``fail_reason`` (and the task stays in
``Wait`` with ``status`` "No", so a caller who lost the job id sees it too), its stage turns
``Cancelled``, the list's ``status`` turns ``No``, or its configuration gets a
``last_error_of_alter_table`` (the task stays in ``Wait``). Failures show once the wait is over.

Each task's fate is drawn from its own generator, seeded with ``seed`` and the task's identity
(project, instance, task name): the same seed gives every task the same fate whatever order
concurrent workers create the tasks in. Without a seed, each run draws afresh.

A configured task (created by a configuration check, section 8) stays in ``Wait`` with
``status`` "Yes" and ``percentage`` "0" until the create call starts it; its fate is drawn
then, and its stages run from then. A share of configured tasks (``alter_error_rate``, drawn
from the seed and the task's identity like the fate) shows a ``last_error_of_alter_table`` in
its configuration at once; started anyway, such a task never leaves ``Wait``.

Jobs (``GET /v3/{project_id}/jobs?id=``) are unknown for ``job_delay_s`` after they start, as
a new job can take seconds to appear; then ``Running``, then ``Completed`` (or ``Failed``) when
the task leaves ``Wait`` (or fails). Pause, resume, delete, modify and a create that meets an
existing name (``--existing-name accept``) start operation jobs of their own, ``Running`` for
``op_job_s`` and then ``Completed``; while one runs, the task is busy (another operation on it
is answered 409, see ``simulator.task_routes``), and a pause or resume shows in the list's
stage once its job has completed.

Values are capitalised as the live service answers them (the SDK documents lower case).
Every time is read from one injected monotonic clock.
"""

from __future__ import annotations

import math
import random
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

FAILURES = ("job_failed", "cancelled", "status_no", "alter_error")
ALTER_ERROR = "ALTER TABLE orders MODIFY COLUMN id: type change is not supported"
JOB_FAIL_REASON = "The source database's binlog is not configured for replication."

# Job names, after the SDK operations that start them.
CREATE_JOB = "CreateStarRocksDataReplication"
START_JOB = "StartStarRocksDataReplication"
PAUSE_JOB = "PauseStarRocksDataReplication"
RESUME_JOB = "ResumeStarRocksDataReplication"
DELETE_JOB = "DeleteStarRocksDataReplication"
MODIFY_JOB = "ModifyDataSync"

TaskKey = tuple[str, str, str]  # project, instance, task name


@dataclass
class Fate:
    """What becomes of one task: when it was created, whether (and how) it fails."""

    created_at: float
    failure: str | None = None
    paused: bool = False
    paused_changed_at: float = -math.inf  # when the last pause or resume was asked
    started: bool = True  # False: configured, waiting for the create call to start it
    alter_error: bool = False  # a configured task drawn to show last_error_of_alter_table

    @property
    def planned(self) -> str:
        """``syncing`` or ``failed``: what a follower should conclude in the end."""
        return "failed" if self.failure or self.alter_error else "syncing"


@dataclass
class Job:
    """One asynchronous job: a create, start, pause, resume or delete of a task."""

    job_id: str
    name: str
    task: TaskKey
    started_at: float
    fate: Fate | None = None  # a create job follows its task's fate
    runs_s: float = 0.0  # an operation job's time Running


def draw_alter_error(salt: str, key: TaskKey, rate: float) -> bool:
    """Whether a configured task shows a ``last_error_of_alter_table`` (its own generator)."""
    rng = random.Random(f"{salt}/alter/{'/'.join(key)}")  # noqa: S311 - a simulation
    return rng.random() < rate


def draw_failure(salt: str, key: TaskKey, fail_rate: float) -> str | None:
    """The failure signal a task is drawn to show, or None if it syncs.

    Args:
        salt: The run's seed as text; with ``key`` it seeds the task's own generator.
        key: (project, instance, task name).
        fail_rate: Share of tasks that fail (0-1).
    """
    rng = random.Random(f"{salt}/{'/'.join(key)}")  # noqa: S311 - a simulation, not cryptography
    fails = rng.random() < fail_rate
    failure = FAILURES[rng.randrange(len(FAILURES))]
    return failure if fails else None


@dataclass
class Lifecycle:
    """The fates of tasks and their jobs (thread-safe).

    Args:
        wait_s: seconds a new task stays in ``Wait``.
        full_s: seconds it then stays in ``Full`` before ``Incremental``.
        fail_rate: share of new tasks that fail to sync (0-1), drawn from ``seed``.
        job_delay_s: seconds a new job is not found by the jobs API.
        seed: seed of the draws (None: not reproducible).
        clock: monotonic seconds.
        alter_error_rate: share of configured tasks whose configuration shows an error.
        op_job_s: seconds an operation job (pause, resume, delete, modify) runs.
    """

    wait_s: float = 0.0
    full_s: float = 0.0
    fail_rate: float = 0.0
    job_delay_s: float = 0.0
    seed: int | None = None
    clock: Callable[[], float] = time.monotonic
    alter_error_rate: float = 0.0
    op_job_s: float = 0.0
    _busy_until: dict[TaskKey, float] = field(default_factory=dict)
    _fates: dict[TaskKey, Fate] = field(default_factory=dict)
    _jobs: dict[str, Job] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._salt = str(self.seed) if self.seed is not None else secrets.token_hex(8)

    def born(self, key: TaskKey, job_id: str) -> None:
        """A task was created with ``job_id``: draw its fate, start its create job."""
        failure = draw_failure(self._salt, key, self.fail_rate)
        with self._lock:
            fate = Fate(created_at=self.clock(), failure=failure)
            self._fates[key] = fate
            self._jobs[job_id] = Job(job_id, CREATE_JOB, key, fate.created_at, fate)

    def configured(self, key: TaskKey) -> None:
        """A configuration check created a task: it waits to be started (no job)."""
        alter = draw_alter_error(self._salt, key, self.alter_error_rate)
        with self._lock:
            self._fates[key] = Fate(created_at=self.clock(), started=False, alter_error=alter)

    def start(self, key: TaskKey, job_id: str) -> bool:
        """Start a configured task with the create call's ``job_id``; False if not waiting."""
        failure = draw_failure(self._salt, key, self.fail_rate)
        with self._lock:
            fate = self._fates.get(key)
            if fate is None or fate.started:
                return False
            fate.started, fate.created_at = True, self.clock()
            fate.failure = "alter_error" if fate.alter_error else failure
            self._jobs[job_id] = Job(job_id, START_JOB, key, fate.created_at, fate)
            return True

    def job_for(self, key: TaskKey, name: str) -> str:
        """Start an operation job on a task (pause, resume, delete, modify, a name met)."""
        with self._lock:
            return self._operation_job(key, name)

    def operate(self, key: TaskKey, name: str) -> str | None:
        """Start an operation job unless one on the task still runs (then None: busy).

        The check and the start are one step, so two calls at once cannot both start.
        """
        with self._lock:
            if self.clock() < self._busy_until.get(key, -math.inf):
                return None
            return self._operation_job(key, name)

    def _operation_job(self, key: TaskKey, name: str) -> str:
        # Under the lock.
        job = Job(uuid.uuid4().hex, name, key, self.clock(), runs_s=self.op_job_s)
        self._jobs[job.job_id] = job
        self._busy_until[key] = job.started_at + self.op_job_s
        return job.job_id

    def forget(self, key: TaskKey) -> None:
        """The task was deleted."""
        with self._lock:
            self._fates.pop(key, None)

    def set_paused(self, key: TaskKey, paused: bool) -> None:
        """Pause or resume a task."""
        with self._lock:
            if key in self._fates:
                fate = self._fates[key]
                fate.paused, fate.paused_changed_at = paused, self.clock()

    def fate(self, key: TaskKey) -> Fate | None:
        """The fate of a task (None if unknown)."""
        with self._lock:
            return self._fates.get(key)

    def fates(self) -> dict[TaskKey, Fate]:
        """Every live task's fate."""
        with self._lock:
            return dict(self._fates)

    def row(self, key: TaskKey) -> dict[str, Any]:
        """The list call's lifecycle fields of a task now."""
        fate = self.fate(key) or Fate(created_at=self.clock())
        now = self.clock()
        age = now - fate.created_at
        stage, status, percentage = "Wait", "Yes", "0"
        # A pause or resume shows once its job has completed.
        settled = now - fate.paused_changed_at >= self.op_job_s
        if fate.paused == settled:
            stage = "Paused"
        elif not fate.started:
            pass  # configured: Wait, Yes, 0 until the create call starts it
        elif age >= self.wait_s and fate.failure == "cancelled":
            stage = "Cancelled"
        elif age >= self.wait_s and fate.failure in {"status_no", "job_failed"}:
            status = "No"
        elif age >= self.wait_s and fate.failure is None:
            full = age < self.wait_s + self.full_s
            stage, percentage = ("Full", "50") if full else ("Incremental", "100")
        return {
            "status": status,
            "stage": stage,
            "percentage": percentage,
            "is_need_repair": False,
            "is_main_task": True,
        }

    def alter_error(self, key: TaskKey) -> str:
        """The configuration's ``last_error_of_alter_table`` now ('' when none)."""
        fate = self.fate(key)
        if fate and fate.alter_error:
            return ALTER_ERROR
        if fate and fate.failure == "alter_error" and self.clock() - fate.created_at >= self.wait_s:
            return ALTER_ERROR
        return ""

    def job_owner(self, job_id: str) -> tuple[str, str] | None:
        """(project, instance) of a job, visible or not yet (None for an id never issued)."""
        with self._lock:
            job = self._jobs.get(job_id)
        return None if job is None else (job.task[0], job.task[1])

    def job(self, job_id: str, project_id: str | None = None) -> dict[str, Any] | None:
        """The jobs API's ``job`` object, or None while (or when) the job is unknown.

        Args:
            job_id: The job's id.
            project_id: The project asking; another project's job is unknown to it.
        """
        with self._lock:
            job = self._jobs.get(job_id)
        now = self.clock()
        if job is None or now - job.started_at < self.job_delay_s:
            return None
        if project_id is not None and job.task[0] != project_id:
            return None
        return _job_json(job, now, self.wait_s)


def _job_json(job: Job, now: float, wait_s: float) -> dict[str, Any]:
    status, reason = "Completed", None
    runs_s = wait_s if job.fate is not None else job.runs_s
    if now - job.started_at < runs_s:
        status = "Running"
    elif job.fate is not None and job.fate.failure == "job_failed":
        status, reason = "Failed", JOB_FAIL_REASON
    running = status == "Running"
    project, instance, task = job.task
    return {
        "id": job.job_id,
        "name": job.name,
        "status": status,
        "created": _iso(job.started_at),
        "ended": None if running else _iso(job.started_at + runs_s),
        # The API reference: progress only while running, "" otherwise.
        "process": "50%" if running else "",
        "instance": {"id": instance, "name": instance},
        "entities": {"task_name": task, "project_id": project},
        "fail_reason": reason,
    }


def _iso(monotonic_s: float) -> str:
    # Jobs carry wall-clock times; the simulator's clock is monotonic: anchor it to now.
    wall = time.time() - (time.monotonic() - monotonic_s)
    return time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(wall))
