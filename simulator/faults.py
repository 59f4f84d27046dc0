"""Fault injection on create calls: seeded draws, scripted steps, latency and held requests."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import random
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from htap_sync.simulator.config import SimulatorConfig


class CreateFault(enum.Enum):
    """What, if anything, goes wrong with one create call; the value is its name in a script."""

    NONE = "ok"
    # 500 DBS.108000 before anything is created: a safe, retryable server failure.
    FAIL = "fail"
    # The call creates (or finds the name taken), then its answer is replaced by a 500.
    CREATED_THEN_500 = "created_then_500"
    # The call creates (or finds the name taken), then the connection closes with no answer.
    DROP_AFTER_CREATE = "drop_after_create"
    # Nothing is created; the request is held open, then answered 500.
    HANG = "hang"
    # The call creates (or finds the name taken), is held open, then gets its true answer.
    HANG_AFTER_CREATE = "hang_after_create"
    # 429 APIGW.0308 with Retry-After; nothing is created.
    THROTTLE = "throttle"
    # 409 DBS.200047 "Another operation is in progress."; nothing is created.
    IN_PROGRESS = "in_progress"


# Faults that act after the create call has done its work (the others replace the call).
AFTER_CREATE: frozenset[CreateFault] = frozenset(
    {CreateFault.CREATED_THEN_500, CreateFault.DROP_AFTER_CREATE, CreateFault.HANG_AFTER_CREATE}
)
_HANGS = frozenset({CreateFault.HANG, CreateFault.HANG_AFTER_CREATE})

# The fault each SimulatorConfig rate field triggers. A new rate field needs an entry here
# (a unit test checks that every field in config.FAULT_RATE_FIELDS has one).
FAULT_OF_RATE: dict[str, CreateFault] = {
    "fail_rate": CreateFault.FAIL,
    "created_then_500_rate": CreateFault.CREATED_THEN_500,
    "drop_after_create_rate": CreateFault.DROP_AFTER_CREATE,
    "hang_rate": CreateFault.HANG,
    "hang_after_create_rate": CreateFault.HANG_AFTER_CREATE,
    "throttle_rate": CreateFault.THROTTLE,
    "in_progress_rate": CreateFault.IN_PROGRESS,
}

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class FaultStep:
    """One scripted create-call fault, optionally overriding the config's parameter for it.

    Written as text: ``"throttle"``, ``"throttle:12"`` (Retry-After 12 s), ``"hang:250"`` or
    ``"hang_after_create:250"`` (hold 250 ms), ``"ok"``, or any other ``CreateFault`` value.
    """

    fault: CreateFault
    # THROTTLE only: Retry-After seconds instead of config.retry_after_s.
    retry_after_s: int | None = None
    # HANG and HANG_AFTER_CREATE only: milliseconds instead of config.hang_ms.
    hang_ms: int | None = None

    def __post_init__(self) -> None:
        for name, allowed in (
            ("retry_after_s", self.fault is CreateFault.THROTTLE),
            ("hang_ms", self.fault in _HANGS),
        ):
            value = getattr(self, name)
            if value is None:
                continue
            if not allowed:
                raise ValueError(f"{self.fault.value}: takes no {name}")
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{self.fault.value}: {name} must be an integer >= 0")

    @classmethod
    def parse(cls, text: str) -> FaultStep:
        """Read ``"name"`` or ``"name:N"`` (see the class docstring).

        Raises:
            ValueError: Unknown name, or a parameter the fault does not take.
        """
        name, _, param = text.partition(":")
        try:
            fault = CreateFault(name)
        except ValueError:
            known = ", ".join(f.value for f in CreateFault)
            raise ValueError(f"{text!r}: unknown fault (known: {known})") from None
        if not param:
            return cls(fault)
        if not param.isascii() or not param.isdigit():
            raise ValueError(f"{text!r}: the parameter must be a whole number")
        if fault is CreateFault.THROTTLE:
            return cls(fault, retry_after_s=int(param))
        if fault in _HANGS:
            return cls(fault, hang_ms=int(param))
        raise ValueError(f"{text!r}: {fault.value} takes no parameter")

    @classmethod
    def of(cls, value: str | CreateFault | FaultStep) -> FaultStep:
        """Return ``value`` as a step: parsed if text, wrapped if a bare fault."""
        if isinstance(value, FaultStep):
            return value
        if isinstance(value, CreateFault):
            return cls(value)
        if isinstance(value, str):
            return cls.parse(value)
        raise ValueError(f"{value!r}: a fault must be a string")

    def __str__(self) -> str:
        """The step as script text, e.g. ``throttle:12``."""
        param = self.retry_after_s if self.retry_after_s is not None else self.hang_ms
        return self.fault.value if param is None else f"{self.fault.value}:{param}"


class Hangs:
    """Requests held open by hang faults; ``release()`` ends them all early, for shutdown.

    Thread-safe: requests are held on the server's event loop, while ``release()`` may come
    from any thread. After ``release()`` new holds return at once, so nothing hangs anymore.
    """

    def __init__(self) -> None:
        """Start with nothing held."""
        self._lock = threading.Lock()
        self._held: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._released = False

    @property
    def held(self) -> int:
        """How many requests are being held right now."""
        with self._lock:
            return len(self._held)

    async def hold(self, seconds: float, sleep: Sleep) -> None:
        """Await ``sleep(seconds)``, or less if ``release()`` is called meanwhile."""
        if seconds <= 0:
            return
        woken = asyncio.Event()
        entry = (asyncio.get_running_loop(), woken)
        with self._lock:
            if self._released:
                return
            self._held.add(entry)
        sleeping = asyncio.ensure_future(sleep(seconds))
        waiting = asyncio.ensure_future(woken.wait())
        try:
            await asyncio.wait({sleeping, waiting}, return_when=asyncio.FIRST_COMPLETED)
            if sleeping.done():
                sleeping.result()  # re-raise a failing injected sleep instead of losing it
        finally:
            sleeping.cancel()
            waiting.cancel()
            with self._lock:
                self._held.discard(entry)

    def release(self) -> None:
        """End every hold now and make later holds return at once; safe from any thread."""
        with self._lock:
            self._released = True
            held = list(self._held)
        for loop, woken in held:
            # The loop may already be closed if its server stopped some other way.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(woken.set)


class Faults:
    """Decides latency and faults for one simulator app.

    One uniform draw per valid create call picks at most one fault: the rates are stacked in
    the fixed order of ``SimulatorConfig.fault_rates()``. Because every such call draws exactly
    once (even when a script overrides the outcome), the same seed and the same sequence of
    calls give the same faults, whatever the rates.
    """

    def __init__(
        self, config: SimulatorConfig, *, sleep: Sleep | None = None, hangs: Hangs | None = None
    ) -> None:
        """Set up the RNG and rates from ``config``.

        Args:
            config: Supplies ``seed``, ``latency_ms``, ``hang_ms`` and the fault rates.
            sleep: Awaitable sleep taking seconds, used for latency and hangs; defaults to
                ``asyncio.sleep`` (tests inject a recorder).
            hangs: Where hang faults hold requests; pass one to release them at shutdown.
        """
        # Fault injection, not cryptography: a seedable PRNG is the point.
        self._rng = random.Random(config.seed)  # noqa: S311
        # uvicorn runs handlers on one loop, but tests may call from other threads too.
        self._lock = threading.Lock()
        self._latency_s = config.latency_ms / 1000.0
        self._hang_ms = config.hang_ms
        self._sleep: Sleep = sleep or asyncio.sleep
        self._hangs = hangs or Hangs()
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

    async def hang(self, step: FaultStep) -> None:
        """Hold the request ``step.hang_ms`` (else the config's); a shutdown ends it early."""
        hang_ms = self._hang_ms if step.hang_ms is None else step.hang_ms
        await self._hangs.hold(hang_ms / 1000.0, self._sleep)
