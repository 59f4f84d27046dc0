"""What the simulator checks and which faults it injects: one frozen, validated value."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# Every fault probability the config carries. A later fault (created-then-500, a drop, a hang,
# a 429) adds its field to the dataclass and its name here: range checks and the "rates add up
# to at most 1" rule then cover it, because one seeded draw per call picks at most one fault.
FAULT_RATE_FIELDS: tuple[str, ...] = ("fail_rate",)


@dataclass(frozen=True)
class SimulatorConfig:
    """Settings of one simulated TaurusDB HTAP endpoint.

    Attributes:
        token: If set, a request may authenticate with ``X-Auth-Token`` equal to it.
        ak: Access key; with ``sk``, a request may authenticate with ``SDK-HMAC-SHA256``.
        sk: Secret key matching ``ak``.
        unknown_instances: StarRocks instance ids answered 400 ``DBS.200022`` (not found).
        latency_ms: Delay added to every create and list call, in milliseconds.
        fail_rate: Fraction (0..1) of valid create calls answered 500 before anything is created.
        seed: Seed of the fault RNG; ``None`` draws a fresh one (not reproducible).

    Raises:
        ValueError: A field is out of range; the message names the field.
    """

    # Secrets stay out of repr() so a logged config never leaks them.
    token: str | None = field(default=None, repr=False)
    ak: str | None = None
    sk: str | None = field(default=None, repr=False)
    unknown_instances: frozenset[str] = frozenset()
    latency_ms: int = 0
    fail_rate: float = 0.0
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("token", "ak", "sk"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"{name}: must be a non-empty string or None")
        if (self.ak is None) != (self.sk is None):
            raise ValueError("ak/sk: set both or neither")
        if isinstance(self.unknown_instances, str):
            # frozenset("abc") would silently become three one-letter ids.
            raise ValueError("unknown_instances: must be a set of ids, not one string")
        # Accept any iterable of ids (a list from a CLI) but store the frozen, hashable form.
        object.__setattr__(self, "unknown_instances", frozenset(self.unknown_instances))
        if not all(isinstance(i, str) for i in self.unknown_instances):
            raise ValueError("unknown_instances: every id must be a string")
        if not _is_int(self.latency_ms) or self.latency_ms < 0:
            raise ValueError("latency_ms: must be an integer >= 0")
        if self.seed is not None and not _is_int(self.seed):
            raise ValueError("seed: must be an integer or None")
        for name in FAULT_RATE_FIELDS:
            rate = getattr(self, name)
            if not _is_number(rate) or not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name}: must be a number between 0 and 1")
        if sum(self.fault_rates().values()) > 1.0:
            raise ValueError(f"{'+'.join(FAULT_RATE_FIELDS)}: fault rates must add up to <= 1")

    def fault_rates(self) -> dict[str, float]:
        """Return every fault rate by field name, in the fixed order faults are drawn."""
        return {name: float(getattr(self, name)) for name in FAULT_RATE_FIELDS}


def _is_int(value: object) -> bool:
    # bool is an int subclass; True as a latency or a seed is a mistake, not a value.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
