"""A scripted TaurusDB API behind httpx.MockTransport, and a clock tests move by hand.

Shared by the worker's tests on Redis (tests/integration/process/) and in memory
(tests/unit/test_process_memory.py), so both tiers script the API the same way.
"""

from __future__ import annotations

from collections import deque

import httpx

# What the create call may be answered with: a response, or a transport failure to raise.
Answer = httpx.Response | type[httpx.TransportError]


def created(job_id: str) -> httpx.Response:
    """A successful create answer."""
    return httpx.Response(200, json={"job_id": job_id}, headers={"X-Request-Id": f"req-{job_id}"})


def refused(
    status: int, code: str, msg: str, *, request_id: str = "req-err", **headers: str
) -> httpx.Response:
    """An error answer in the API's format."""
    return httpx.Response(
        status,
        json={"error_code": code, "error_msg": msg},
        headers={"X-Request-Id": request_id, **headers},
    )


class ScriptedApi:
    """A TaurusDB API whose create answers a test scripts; the list call shows ``listed``.

    Every request is recorded, so a test can assert the exact calls made. A POST with no
    scripted answer left fails the test: it should never have been sent.
    """

    def __init__(self) -> None:
        self.creates: deque[Answer] = deque()
        self.lists: deque[Answer] = deque()
        self.listed: list[dict[str, str]] = []
        self.seen: list[httpx.Request] = []

    def answer_creates(self, *answers: Answer) -> None:
        """Queue answers for the next create calls, in order."""
        self.creates.extend(answers)

    def answer_lists(self, *answers: Answer) -> None:
        """Queue answers for the next list calls; when none is left, the list shows ``listed``."""
        self.lists.extend(answers)

    def show(self, request: dict[str, str], stage: str = "full", **changes: str) -> None:
        """Make the list call report the task of ``request`` (with some fields changed)."""
        task = {**request, **changes}
        self.listed.append(
            {
                "task_name": task["task_name"],
                "source_database": task["source_database"],
                "target_database": task["target_database"],
                "status": "Yes",
                "stage": stage,
                "percentage": "0",
            }
        )

    @property
    def methods(self) -> list[str]:
        """The methods of every request received, in order."""
        return [r.method for r in self.seen]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if request.method == "GET" and self.lists:
            listed = self.lists.popleft()
            if isinstance(listed, httpx.Response):
                return listed
            raise listed("scripted transport failure", request=request)
        if request.method == "GET":
            body = {"total_count": str(len(self.listed)), "replications": list(self.listed)}
            return httpx.Response(200, json=body, headers={"X-Request-Id": "req-list"})
        assert request.method == "POST", request
        if not self.creates:
            raise AssertionError("unexpected create call: no answer was scripted for it")
        answer = self.creates.popleft()
        if isinstance(answer, httpx.Response):
            return answer
        raise answer("scripted transport failure", request=request)


class FakeClock:
    """Seconds since the epoch that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Let time pass."""
        self.now += seconds
