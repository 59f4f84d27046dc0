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

Jobs (``GET /v3/{project_id}/jobs?id=``) are unknown for ``job_delay_s`` after they start, as
a new job can take seconds to appear; then ``Running``, then ``Completed`` (or ``Failed``) when
the task leaves ``Wait`` (or fails). Pause, resume, delete and a create that meets an existing
name (``--existing-name accept``) start jobs of their own, complete as soon as they appear.

Values are capitalised as the live service answers them (the SDK documents lower case).
Every time is read from one injected monotonic clock.
"""

from __future__ import annotations

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

TaskKey = tuple[str, str, str]  # project, instance, task name


@dataclass
class Fate:
    """What becomes of one task: when it was created, whether (and how) it fails."""

    created_at: float
    failure: str | None = None
    paused: bool = False

    @property
    def planned(self) -> str:
        """``syncing`` or ``failed``: what a follower should conclude in the end."""
        return "failed" if self.failure else "syncing"


@dataclass
class Job:
    """One asynchronous job: a create, start, pause, resume or delete of a task."""

    job_id: str
    name: str
    task: TaskKey
    started_at: float
    fate: Fate | None = None  # a create job follows its task's fate


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
    """

    wait_s: float = 0.0
    full_s: float = 0.0
    fail_rate: float = 0.0
    job_delay_s: float = 0.0
    seed: int | None = None
    clock: Callable[[], float] = time.monotonic
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

    def job_for(self, key: TaskKey, name: str) -> str:
        """Start a job on a task (pause, resume, delete, a start of an existing name)."""
        with self._lock:
            job = Job(uuid.uuid4().hex, name, key, self.clock())
            self._jobs[job.job_id] = job
            return job.job_id

    def forget(self, key: TaskKey) -> None:
        """The task was deleted."""
        with self._lock:
            self._fates.pop(key, None)

    def set_paused(self, key: TaskKey, paused: bool) -> None:
        """Pause or resume a task."""
        with self._lock:
            if key in self._fates:
                self._fates[key].paused = paused

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
        age = self.clock() - fate.created_at
        stage, status, percentage = "Wait", "Yes", "0"
        if fate.paused:
            stage = "Paused"
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
    if job.fate is not None and now - job.started_at < wait_s:
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
        "ended": None if running else _iso(job.started_at + (wait_s if job.fate else 0.0)),
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
