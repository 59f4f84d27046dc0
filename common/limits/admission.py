"""What the gate answers before a create call, and the checks a store runs for it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Admission:
    """The gate's answer before a create call: go after ``sleep_s`` (a reserved token), or
    wait ``wait_s`` for ``reason`` and send nothing."""

    reason: Literal["", "rate", "breaker"] = ""
    wait_s: float = 0.0
    sleep_s: float = 0.0


@dataclass(frozen=True)
class ScriptedLimits:
    """The gate's checks as the arguments of ``bucket.lua`` and ``breaker.lua`` (encoded, as
    sent), for a store that runs them in its own scripts: a Redis store on the same client
    (``where``)."""

    where: object
    bucket_key: str
    acquire_args: list[bytes]
    breaker_key: str
    allow_args: list[bytes]
    ok_args: list[bytes]


class Limits(ABC):
    """The gate's checks around one create call: the rate limit, then the breaker.

    ``scripted`` is set when their state lives in Redis (a Redis store runs them inside
    ``start``/``finish``); ``free`` when there is nothing to check.
    """

    scripted: ScriptedLimits | None = None
    free: bool = False
    max_sleep_s: float = 0.0  # a reserved token further away than this is a wait

    @abstractmethod
    def admit(self) -> Admission:
        """Take a token, then ask the breaker; never sleeps."""

    @abstractmethod
    def succeeded(self) -> None:
        """Tell the breaker that a call succeeded."""

    @abstractmethod
    def sleep(self, seconds: float) -> None:
        """Sleep until a reserved token is due."""
