"""When the follow-up calls came, per HTAP instance: the proof of "one list call per round".

Each list call is logged under the instance in its path, each jobs call under the instance
of the job it asked about (``instance_id`` None for an id the simulator never issued), with
its arrival time in monotonic seconds (the app's clock). Only the latest ``cap`` times of each
instance are kept, so a long run keeps a bounded log.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any, Literal

Api = Literal["list", "jobs"]
CallKey = tuple[str, str | None]  # project, instance (None: a job id never issued)
CALLS_CAP = 100_000


class CallLog:
    """Thread-safe arrival times of list and jobs calls, per (project, instance)."""

    def __init__(self, cap: int = CALLS_CAP) -> None:
        """Create an empty log keeping at most ``cap`` times per instance and API."""
        self._lock = threading.Lock()
        self._cap = cap
        self._log: dict[Api, dict[CallKey, deque[float]]] = {"list": {}, "jobs": {}}

    def record(self, api: Api, project_id: str, instance_id: str | None, at: float) -> None:
        """Log one call of ``api`` about an instance, arrived at ``at`` (monotonic s)."""
        with self._lock:
            per = self._log[api]
            per.setdefault((project_id, instance_id), deque(maxlen=self._cap)).append(at)

    def times(self, api: Api) -> dict[CallKey, list[float]]:
        """The arrival times of each instance's calls of ``api``, oldest first."""
        with self._lock:
            return {key: list(times) for key, times in self._log[api].items()}

    def as_json(self, api: Api) -> list[dict[str, Any]]:
        """``[{"project_id", "instance_id", "times": [...]}]``, as ``/_sim/*-calls`` answer."""
        return [
            {"project_id": project, "instance_id": instance, "times": times}
            for (project, instance), times in self.times(api).items()
        ]
