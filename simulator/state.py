"""The simulator's memory: sync tasks per instance, job ids, and the counters tests assert on."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

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
    job_id: str

    def to_replication(self) -> dict[str, str]:
        """Return the task as one entry of the list call's ``replications`` array.

        A new task is reported as running its full (initial) load: the simulator does not
        advance stages, so ``status``/``stage``/``percentage`` are fixed.
        """
        return {
            "task_name": self.task_name,
            "source_database": self.source_database,
            "target_database": self.target_database,
            "status": "Yes",
            "stage": "full",
            "percentage": "0",
        }


class SimulatorState:
    """Thread-safe in-memory store shared by the app and the tests that inspect it.

    Every method takes one lock, so a check-and-create is atomic even when uvicorn and a test
    thread touch the store at the same time.
    """

    def __init__(self) -> None:
        """Create an empty store."""
        self._lock = threading.Lock()
        # dicts keep insertion order, which is the creation order the list call reports.
        self._tasks: dict[InstanceKey, dict[str, Task]] = {}
        # Counted separately from _tasks so a task created twice (after a delete, or by a bug
        # that bypassed the duplicate check) shows 2 even though only one copy is stored.
        self._creations: Counter[tuple[str, str, str]] = Counter()
        self._create_calls = 0
        self._created = 0
        self._create_answers: Counter[int] = Counter()

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

    def create_answers(self) -> dict[int, int]:
        """Return how many create calls got each HTTP status."""
        with self._lock:
            return dict(self._create_answers)

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

    def snapshot(self) -> dict[str, Any]:
        """Return a JSON-able summary for ``GET /_sim/stats``.

        Small on purpose (benchmarks create many tasks): counters, tasks per instance, and every
        task created more than once, which should always be an empty list.
        """
        with self._lock:
            return {
                "create_calls": self._create_calls,
                "created": self._created,
                "tasks": sum(len(t) for t in self._tasks.values()),
                "create_answers": {str(k): v for k, v in sorted(self._create_answers.items())},
                "instances": [
                    {"project_id": p, "instance_id": i, "tasks": len(t)}
                    for (p, i), t in self._tasks.items()
                ],
                "created_more_than_once": [
                    {"project_id": p, "instance_id": i, "task_name": n, "creates": c}
                    for (p, i, n), c in self._creations.items()
                    if c > 1
                ],
            }
