"""Tests of the gateway's token bucket on create calls (no network)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from htap_sync.simulator import (
    RateLimit,
    RateLimiter,
    max_in_window,
)
from tests.unit.sim_app import (
    HEX32,
    PATH,
    PROJECT,
    assert_error,
    body,
)
from tests.unit.sim_rate import OTHER_PROJECT, FakeClock, Sim, limited, throttled_body

# --- the token bucket ---------------------------------------------------------------------


def test_bucket_admits_burst_then_rate_per_second() -> None:
    """A full bucket admits `burst` calls at once, then one call every 1/rate seconds."""
    sim = limited(4, burst=3)
    assert sim.statuses(5) == [200, 200, 200, 429, 429]
    for _ in range(8):
        sim.clock.advance(0.25)
        assert sim.statuses(2) == [200, 429]
    assert sim.state.created == 3 + 8
    assert sim.state.create_call_times() == [0.0] * 3 + [0.25 * i for i in range(1, 9)]
    assert len(sim.state.create_call_times(admitted_only=False)) == 5 + 2 * 8
    assert sim.state.throttled_by_limit == 2 + 8


def test_an_idle_bucket_refills_only_up_to_burst() -> None:
    """However long a project stays idle, it gets at most `burst` calls at once."""
    sim = limited(4, burst=3)
    sim.statuses(3)
    sim.clock.advance(60)
    assert sim.statuses(4) == [200, 200, 200, 429]


def test_default_burst_is_the_rate_rounded_up() -> None:
    """Without a burst, a project gets ceil(rate) calls at once (at least 1)."""
    assert limited(2.5).statuses(4) == [200, 200, 200, 429]
    assert limited(0.25).statuses(2) == [200, 429]


def test_rate_limit_429_body_and_retry_after_are_exact() -> None:
    """Beyond the limit: 429 APIGW.0308 naming the limit, Retry-After: 1, a request id."""
    sim = limited(2, burst=1)
    assert sim.create().status_code == 200
    response = sim.create()
    assert response.status_code == 429
    assert response.json() == throttled_body("2")
    assert response.headers["Retry-After"] == "1"
    assert HEX32.fullmatch(response.headers["X-Request-Id"])


def test_retry_after_is_the_whole_seconds_until_the_next_token() -> None:
    """Below 1 call/s, Retry-After rounds the wait for the next token up (never below 1)."""
    sim = limited(0.25, burst=1)
    assert sim.create().status_code == 200
    for advance, retry_after in ((0.0, "4"), (1.5, "3"), (2.25, "1")):
        sim.clock.advance(advance)
        response = sim.create()
        assert response.json() == throttled_body("0.25")
        assert response.headers["Retry-After"] == retry_after
    sim.clock.advance(0.25)  # t = 4.0: the token is back
    assert sim.create().status_code == 200


def test_limit_retry_after_ignores_the_fault_setting() -> None:
    """retry_after_s (the injected throttle's header) does not change the limit's Retry-After."""
    sim = limited(1, burst=1, retry_after_s=None)
    sim.create()
    assert sim.create().headers["Retry-After"] == "1"


def test_throttled_calls_create_nothing_and_count_apart_from_faults() -> None:
    """A throttled call creates nothing; it counts as a 429 and in throttled_by_limit only."""
    sim = limited(1, burst=1)
    sim.statuses(3)
    assert (sim.state.created, sim.state.create_calls) == (1, 3)
    assert sim.state.create_answers() == {200: 1, 429: 2}
    assert (sim.state.throttled_by_limit, sim.state.faults_injected()) == (2, {})


def test_throttled_calls_take_no_seeded_fault_draw() -> None:
    """Admitted calls meet the same seeded faults as if the throttled calls never happened."""
    faults: dict[str, Any] = {"fail_rate": 0.5, "in_progress_rate": 0.2, "seed": 11}
    throttling = limited(1, burst=1, **faults)
    admitted: list[int] = []
    for _ in range(20):
        first, second = throttling.statuses(2)
        admitted.append(first)
        assert second == 429
        throttling.clock.advance(1)
    unlimited = Sim(**faults)
    assert admitted == unlimited.statuses(20)
    assert {200, 409, 500} <= set(admitted)  # the seed does inject faults
    assert throttling.state.faults_injected() == unlimited.state.faults_injected()
    assert throttling.state.created == unlimited.state.created


def test_throttled_calls_leave_the_script_alone() -> None:
    """A throttled call takes no scripted step: the next admitted call gets it."""
    sim = limited(1, burst=1)
    sim.state.script(["in_progress", "fail"])
    assert sim.statuses(3) == [409, 429, 429]
    assert sim.state.scripted() == ["fail"]
    assert sim.state.faults_injected() == {"in_progress": 1}
    sim.clock.advance(1)
    assert sim.statuses(2) == [500, 429]
    assert (sim.state.scripted(), sim.state.created) == ([], 0)


def test_invalid_requests_are_4xx_even_when_the_bucket_is_empty() -> None:
    """Auth, validation and unknown instances are checked before the limit, and not logged."""
    missing = "ffffffffffffffffffffffffffffffffin17"
    sim = limited(1, burst=1, token="tok", unknown_instances=frozenset({missing}))
    headers = {"X-Auth-Token": "tok"}
    assert sim.create(headers=headers).status_code == 200  # the only token
    bad_name = sim.client.post(PATH, json=body(task_name="x"), headers=headers)
    assert_error(bad_name, 400, "DBS.280001")
    bad_path = sim.client.post(PATH.replace(PROJECT, "short"), json=body(), headers=headers)
    assert_error(bad_path, 400, "DBS.280001")
    unknown = sim.client.post(PATH, json=body(source_instance_id=missing), headers=headers)
    assert_error(unknown, 400, "DBS.200022")
    assert_error(sim.create(), 401, "APIGW.0301")
    assert sim.state.create_call_times(admitted_only=False) == [0.0]
    assert sim.state.throttled_by_limit == 0
    assert_error(sim.create(headers=headers), 429, "APIGW.0308")


def test_invalid_requests_take_no_token() -> None:
    """Bad calls before a valid one leave the bucket full for it."""
    sim = limited(1, burst=1)
    for _ in range(3):
        assert_error(sim.client.post(PATH, json=body(task_name="x")), 400, "DBS.280001")
    assert sim.statuses(2) == [200, 429]


def test_projects_have_independent_buckets() -> None:
    """One project using up its bucket does not throttle another project."""
    sim = limited(1, burst=2)
    assert sim.statuses(3, PROJECT) == [200, 200, 429]
    assert sim.statuses(3, OTHER_PROJECT) == [200, 200, 429]
    sim.clock.advance(1)
    assert sim.statuses(2, OTHER_PROJECT) == [200, 429]
    assert sim.statuses(2, PROJECT) == [200, 429]


def test_without_a_limit_every_call_is_admitted_and_logged() -> None:
    """No rate_limit_per_s: nothing is throttled, yet every valid call's arrival is logged."""
    sim = Sim()
    assert sim.statuses(50) == [200] * 50
    assert sim.state.create_call_times() == [0.0] * 50
    assert sim.state.throttled_by_limit == 0


@settings(derandomize=True, max_examples=200, deadline=None)
@given(
    per_s=st.floats(min_value=0.5, max_value=50),
    burst=st.integers(min_value=1, max_value=20),
    gaps=st.lists(st.floats(min_value=0, max_value=0.5), max_size=300),
)
def test_admitted_calls_never_exceed_rate_plus_burst_in_one_second(
    per_s: float, burst: int, gaps: list[float]
) -> None:
    """Whatever the arrivals, no one-second window admits more than rate + burst calls."""
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(per_s, burst), clock=clock)
    admitted: list[float] = []
    for gap in gaps:
        clock.advance(gap)
        admission = limiter.admit(PROJECT)
        if admission.admitted:
            admitted.append(admission.at)
    assert max_in_window(admitted) <= per_s + burst + 1e-6
