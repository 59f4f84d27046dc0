"""Tests of the simulator's arrival measures: max-in-window, observed rate, snapshot."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from htap_sync.simulator import (
    SimulatorState,
    max_in_window,
    observed_rate,
)
from tests.unit.sim_rate import Sim, limited

# --- arrival measures ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("times", "most", "rate"),
    [
        ([], 0, 0.0),
        ([5.0], 1, 0.0),
        ([0.0, 1.0], 1, 1.0),  # exactly 1 s apart: never in one half-open window
        ([0.0, 1.0, 2.0], 1, 1.0),
        ([0.0, 0.5, 1.0], 2, 2.0),
        ([0.0, 0.25, 0.5, 0.75, 1.0, 1.25], 4, 4.0),
        ([1.0, 0.0, 0.5], 2, 2.0),  # any order
        ([0.0, 0.0, 0.0, 0.5, 1.5], 4, 4 / 1.5),
        ([3.0, 3.0, 3.0], 3, math.inf),  # several calls at one instant
    ],
)
def test_max_in_window_and_observed_rate(times: list[float], most: int, rate: float) -> None:
    """max_in_window counts a half-open [t, t + 1) window; observed_rate is (n-1)/(last-first)."""
    assert max_in_window(times) == most
    assert observed_rate(times) == rate


def test_max_in_window_takes_other_window_lengths() -> None:
    """window_s sets the window length, still half-open; it must be > 0."""
    assert max_in_window([0.0, 1.0, 2.0], window_s=2.0) == 2
    assert max_in_window([0.0, 0.25, 0.5], window_s=0.5) == 2
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match=r"^window_s:"):
            max_in_window([0.0], window_s=bad)


def test_observed_rate_of_a_steady_caller_is_its_rate() -> None:
    """81 calls 0.125 s apart measure exactly 8 calls/s, 8 in any second."""
    times = [i * 0.125 for i in range(81)]
    assert observed_rate(times) == 8.0
    assert max_in_window(times) == 8


def test_snapshot_reports_limit_and_arrival_measures() -> None:
    """Snapshot and /_sim/stats carry throttled_by_limit and the arrival measures."""
    sim = limited(2, burst=2)
    empty = sim.state.snapshot()
    assert (empty["observed_rate"], empty["max_in_1s"], empty["throttled_by_limit"]) == (0.0, 0, 0)
    assert sim.statuses(3) == [200, 200, 429]
    for _ in range(2):
        sim.clock.advance(0.5)
        assert sim.statuses(1) == [200]
    snapshot = sim.state.snapshot()
    assert snapshot["throttled_by_limit"] == 1
    assert (snapshot["observed_rate"], snapshot["max_in_1s"]) == (3.0, 3)
    assert (snapshot["observed_rate_all"], snapshot["max_in_1s_all"]) == (4.0, 4)
    assert snapshot["create_answers"] == {"200": 4, "429": 1}
    assert snapshot["faults"] == {}
    assert sim.client.get("/_sim/stats").json() == snapshot
    assert json.loads(json.dumps(snapshot)) == snapshot


def test_snapshot_rate_of_one_instant_is_null() -> None:
    """Several calls at one instant have an infinite rate, which the snapshot sends as null."""
    sim = Sim()
    sim.statuses(2)
    assert sim.state.snapshot()["observed_rate"] is None
    assert sim.client.get("/_sim/stats").json()["observed_rate"] is None


def test_arrival_log_is_capped_but_the_measures_cover_the_run() -> None:
    """create_call_times keeps the latest arrivals_cap times; the snapshot counts them all."""
    state = SimulatorState(arrivals_cap=3)
    for i in range(5):
        state.record_create_arrival(i * 0.25, admitted=True)
    state.record_create_arrival(1.0, admitted=False)
    assert state.create_call_times() == [0.5, 0.75, 1.0]
    assert state.create_call_times(admitted_only=False) == [0.75, 1.0, 1.0]
    snapshot = state.snapshot()
    assert (snapshot["observed_rate"], snapshot["max_in_1s"]) == (4.0, 4)
    assert (snapshot["max_in_1s_all"], snapshot["throttled_by_limit"]) == (5, 1)


@settings(derandomize=True, max_examples=200, deadline=None)
@given(
    gaps=st.lists(st.sampled_from([0.0, 0.125, 0.25, 0.5, 1.0, 1.5]), max_size=60),
    admitted=st.lists(st.booleans(), min_size=60, max_size=60),
)
def test_snapshot_measures_match_the_helpers(gaps: list[float], admitted: list[bool]) -> None:
    """The snapshot's running measures equal the helpers over create_call_times."""
    state = SimulatorState()
    at = 0.0
    for gap, ok in zip(gaps, admitted, strict=False):
        at += gap
        state.record_create_arrival(at, admitted=ok)
    snapshot = state.snapshot()
    for suffix, times in (
        ("", state.create_call_times()),
        ("_all", state.create_call_times(admitted_only=False)),
    ):
        rate = observed_rate(times)
        assert snapshot[f"observed_rate{suffix}"] == (rate if math.isfinite(rate) else None)
        assert snapshot[f"max_in_1s{suffix}"] == max_in_window(times)
