"""What the rate-limit tests of the simulator share: a clock, a simulator on it, the 429 body."""

from __future__ import annotations

from typing import Any

import httpx

from htap_sync.simulator import (
    RateLimiter,
    SimulatorConfig,
    SimulatorState,
    make_app,
)
from tests.unit.sim_app import (
    PATH,
    PROJECT,
    AppClient,
    body,
)

OTHER_PROJECT = "fedcba9876543210fedcba9876543210"


def throttled_body(limit: str) -> dict[str, str]:
    """The exact 429 body of the rate limit at ``limit`` calls a second."""
    return {
        "error_code": "APIGW.0308",
        "error_msg": "The throttling threshold has been reached: "
        f"policy user over ratelimit,limit:{limit},time:1 second",
    }


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        """The current time."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now += seconds


class Sim:
    """An app on a fake clock with a fresh state; every create uses a new task name."""

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        limiter: RateLimiter | None = None,
        **fields: Any,
    ) -> None:
        self.clock = FakeClock()
        self.state = SimulatorState()
        self.config = config or SimulatorConfig(**fields)
        if limiter is None:
            app = make_app(self.config, self.state, monotonic=self.clock)
        else:
            app = make_app(self.config, self.state, rate_limiter=limiter)
        self.client = AppClient(app)
        self._names = 0

    def create(self, project: str = PROJECT, **kwargs: Any) -> httpx.Response:
        """POST a valid create (a new task name each time) for ``project``."""
        self._names += 1
        url = PATH.replace(PROJECT, project)
        return self.client.post(url, json=body(task_name=f"task_{self._names:04d}"), **kwargs)

    def statuses(self, calls: int, project: str = PROJECT) -> list[int]:
        """The statuses of ``calls`` creates made at the current instant."""
        return [self.create(project).status_code for _ in range(calls)]


def limited(per_s: float, burst: int | None = None, **fields: Any) -> Sim:
    """A Sim whose gateway limits create calls to ``per_s`` with ``burst``."""
    return Sim(rate_limit_per_s=per_s, rate_limit_burst=burst, **fields)
