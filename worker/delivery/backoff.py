"""How long to wait before the next attempt: a pure function of the attempt and the settings."""

from __future__ import annotations

import random


def backoff_s(
    attempt: int,
    *,
    base_s: float,
    max_s: float,
    rng: random.Random,
    retry_after_s: float | None = None,
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1 for the first).

    Exponential with full jitter: uniform in ``[0, min(max_s, base_s * 2**(attempt-1))]``,
    which spreads a fleet's retries instead of synchronising them. A server's ``Retry-After``
    replaces the draw, capped at ``max_s``.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    if retry_after_s is not None:
        return min(max(retry_after_s, 0.0), max_s)
    # min() before the power would overflow: 2**1100 is still a float-able int, 2.0**1100 not.
    ceiling = max_s if attempt > 64 else min(max_s, base_s * 2.0 ** (attempt - 1))
    return rng.uniform(0.0, ceiling)
