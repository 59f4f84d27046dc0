"""Backoff is exponential with full jitter, bounded, and yields to Retry-After."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from htap_sync.common.errors import InProgress, ServerError
from htap_sync.common.settings import load_settings
from htap_sync.worker.delivery.backoff import backoff_s
from htap_sync.worker.delivery.recovery import backoff_cap_s

attempts = st.integers(min_value=1, max_value=10_000)
bases = st.floats(min_value=0.001, max_value=60)
maxes = st.floats(min_value=0.001, max_value=3600)
seeds = st.integers(min_value=0, max_value=2**32)


@given(attempt=attempts, base=bases, cap=maxes, seed=seeds)
def test_wait_is_within_the_jitter_range(attempt: int, base: float, cap: float, seed: int) -> None:
    """Every wait lies in [0, min(cap, base * 2**(attempt-1))]."""
    wait = backoff_s(attempt, base_s=base, max_s=cap, rng=random.Random(seed))
    assert 0.0 <= wait <= min(cap, base * 2.0 ** min(attempt - 1, 1023))


@given(attempt=st.integers(min_value=1, max_value=20), seed=seeds)
def test_ceiling_doubles_until_the_cap(attempt: int, seed: int) -> None:
    """With a random source that always draws the top, waits are base * 2**(n-1), capped."""

    class Top(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    assert backoff_s(attempt, base_s=1.0, max_s=300.0, rng=Top(seed)) == min(
        300.0, 2.0 ** (attempt - 1)
    )


def test_jitter_spreads_waits() -> None:
    """Full jitter: many draws for one attempt cover the range, not one point."""
    rng = random.Random(1)
    waits = [backoff_s(5, base_s=1.0, max_s=300.0, rng=rng) for _ in range(2000)]
    assert min(waits) < 1.0
    assert max(waits) > 15.0
    assert 6.0 < sum(waits) / len(waits) < 10.0  # mean of U(0, 16) is 8


@given(retry_after=st.floats(min_value=-10, max_value=1e6), cap=maxes, attempt=attempts)
def test_retry_after_overrides_and_is_capped(retry_after: float, cap: float, attempt: int) -> None:
    """A server's Retry-After replaces the draw, never below 0 and never above the cap."""
    wait = backoff_s(
        attempt, base_s=1.0, max_s=cap, rng=random.Random(0), retry_after_s=retry_after
    )
    assert wait == min(max(retry_after, 0.0), cap)


def test_attempts_count_from_one() -> None:
    """Attempt 0 is a programming error, not a zero wait."""
    with pytest.raises(ValueError, match="attempt"):
        backoff_s(0, base_s=1.0, max_s=10.0, rng=random.Random(0))


def test_a_server_failure_backs_off_no_longer_than_the_breaker_holds() -> None:
    """A 5xx or a lost answer waits at most the breaker's cooldown (the breaker holds the fleet
    off a failing endpoint; a longer wait would only outlast the fault); a 409 in progress
    keeps the configured maximum, and never more."""
    settings = load_settings({"backoff_max_s": 300, "breaker_cooldown_s": 30}, env_file=None)
    assert backoff_cap_s(ServerError("down", http_status=503), settings) == 30
    assert backoff_cap_s(InProgress("busy", http_status=409), settings) == 300
    short = load_settings({"backoff_max_s": 5, "breaker_cooldown_s": 30}, env_file=None)
    assert backoff_cap_s(ServerError("down", http_status=503), short) == 5
