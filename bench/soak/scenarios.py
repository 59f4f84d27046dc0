"""The soak's scenarios: load, the simulator's faults, and the faults injected mid-run."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from bench.soak.fleet import Fleet
from bench.soak.measure import Fault

OUTAGE_S = 20.0  # the 500 window
REDIS_DOWN_S = 5.0  # how long Redis stays dead before it restarts from its AOF
RETRY_AFTER_S = 10  # of the 2 % of creates answered 429 in scenario 4

# The live lifecycle (the CLI's: 1 s in Wait, 1 s in Full; jobs seen after 0.5 s), 10 % of
# tasks failing to sync, 20 ms per call; one seed, so a run can be replayed.
LIFECYCLE = ("--seed", "7", "--sync-fail-rate", "0.1", "--latency-ms", "20")
# Scenarios 1, 2 and 5 add failed creates, creates answered 500 after they made the task, and
# answers lost after the task was made; not the gateway's 429s: scenario 4 measures those, and a
# Retry-After that blocks the fleet for 10 s would set the drain's pace after a kill or a failover
# (the drain a fault costs is what those scenarios measure).
CREATE_FAULTS = (
    *("--fail-rate", "0.05", "--created-then-500-rate", "0.03"),
    *("--drop-after-create-rate", "0.03"),
)


@dataclass(frozen=True)
class Trigger:
    """Inject a fault once ``at_progress`` of the tickets are done, or ``latest_s`` after the
    rows were submitted, whichever comes first. ``act`` returns the fault with its end."""

    at_progress: float
    latest_s: float
    act: Callable[[Fleet], Fault]


@dataclass(frozen=True)
class Scenario:
    """One phase of the soak, on a fleet of its own (own Redis, simulator, key prefix, queue).

    ``max_s``: the scenario stops waiting this long after its rows were submitted.
    ``throttled``: the 429s are the fault (it ends ``RETRY_AFTER_S`` after the last one).
    """

    key: str
    name: str
    path: Literal["batched", "single"]
    rows: int
    sim_args: tuple[str, ...]
    triggers: tuple[Trigger, ...]
    max_s: float
    sentinel: bool = False
    throttled: bool = False


def kill_worker(fleet: Fleet) -> Fault:
    """SIGKILL a worker (a replacement starts at once); the fault ends with the kill."""
    fleet.kill_worker()
    return Fault("worker kill", time.time())


def restart_redis(fleet: Fleet) -> Fault:
    """kill -9 Redis, restart it from its AOF; the fault ends when it answers again."""
    fleet.restart_redis(REDIS_DOWN_S)
    return Fault("redis restart", time.time(), grace_s=30.0)


def outage(fleet: Fleet) -> Fault:
    """Every create call answers 500 for ``OUTAGE_S`` from now."""
    fleet.sim("/_sim/outage", method="PUT", body={"seconds": OUTAGE_S})
    return Fault("500 window", time.time() + OUTAGE_S)


def failover(fleet: Fleet) -> Fault:
    """``SENTINEL FAILOVER``; the fault ends when the sentinels name the new master."""
    fleet.failover()
    return Fault("failover", time.time())


KILL_THEN_RESTART = (Trigger(0.30, 40.0, kill_worker), Trigger(0.60, 75.0, restart_redis))

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "batched",
        "1 batched: worker kill, Redis restart",
        "batched",
        400,
        (*LIFECYCLE, *CREATE_FAULTS),
        KILL_THEN_RESTART,
        max_s=145.0,
    ),
    Scenario(
        "single",
        "2 single: worker kill, Redis restart",
        "single",
        400,
        (*LIFECYCLE, *CREATE_FAULTS),
        KILL_THEN_RESTART,
        max_s=145.0,
    ),
    Scenario(
        "outage",
        f"3 API answers 500 for {OUTAGE_S:.0f} s",
        "batched",
        300,
        LIFECYCLE,
        (Trigger(0.15, 8.0, outage),),
        max_s=110.0,
    ),
    Scenario(
        "throttle",
        f"4 2 % of creates 429, Retry-After {RETRY_AFTER_S} s",
        "single",
        300,
        (*LIFECYCLE, "--throttle-rate", "0.02", "--retry-after-s", str(RETRY_AFTER_S)),
        (),
        max_s=100.0,
        throttled=True,
    ),
)

SENTINEL = Scenario(
    "sentinel",
    "5 batched: two Sentinel failovers",
    "batched",
    400,
    (*LIFECYCLE, *CREATE_FAULTS),
    (Trigger(0.40, 50.0, failover), Trigger(0.70, 90.0, failover)),
    max_s=150.0,
    sentinel=True,
)
