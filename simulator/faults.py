"""Seeded fault injection: added latency and which create calls fail, reproducible by seed."""

from __future__ import annotations

import asyncio
import enum
import random
import threading
from collections.abc import Awaitable, Callable

from simulator.config import SimulatorConfig


class CreateFault(enum.Enum):
    """What, if anything, goes wrong with one create call."""

    NONE = "none"
    # 500 DBS.108000 before anything is created: a safe, retryable server failure.
    FAIL = "fail"


# The fault each SimulatorConfig rate field triggers. A new rate field needs an entry here
# (a unit test checks that every field in config.FAULT_RATE_FIELDS has one).
FAULT_OF_RATE: dict[str, CreateFault] = {"fail_rate": CreateFault.FAIL}

Sleep = Callable[[float], Awaitable[None]]


class Faults:
    """Decides latency and failures for one simulator app.

    One uniform draw per create call picks at most one fault: the rates are stacked in the
    fixed order of ``SimulatorConfig.fault_rates()``. Because every call draws exactly once,
    the same seed and the same sequence of calls give the same faults, whatever the rates.
    """

    def __init__(self, config: SimulatorConfig, *, sleep: Sleep | None = None) -> None:
        """Set up the RNG and rates from ``config``.

        Args:
            config: Supplies ``seed``, ``latency_ms`` and the fault rates.
            sleep: Awaitable sleep taking seconds; defaults to ``asyncio.sleep`` (tests inject
                a recorder).
        """
        # Fault injection, not cryptography: a seedable PRNG is the point.
        self._rng = random.Random(config.seed)  # noqa: S311
        # uvicorn runs handlers on one loop, but tests may call from other threads too.
        self._lock = threading.Lock()
        self._latency_s = config.latency_ms / 1000.0
        self._sleep: Sleep = sleep or asyncio.sleep
        self._rates = [(FAULT_OF_RATE[name], rate) for name, rate in config.fault_rates().items()]

    async def delay(self) -> None:
        """Wait the configured latency (nothing when it is 0)."""
        if self._latency_s > 0:
            await self._sleep(self._latency_s)

    def create_fault(self) -> CreateFault:
        """Draw the fault for one create call (``CreateFault.NONE`` most of the time)."""
        with self._lock:
            draw = self._rng.random()
        threshold = 0.0
        for fault, rate in self._rates:
            threshold += rate
            if draw < threshold:
                return fault
        return CreateFault.NONE
