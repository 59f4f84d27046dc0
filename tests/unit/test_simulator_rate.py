"""Tests of the gateway's rate limit on create calls and of the arrival-time measures."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from htap_sync.simulator import (
    RateLimit,
    RateLimiter,
    SimulatorConfig,
    SimulatorServer,
    SimulatorState,
    make_app,
    max_in_window,
    observed_rate,
)
from htap_sync.simulator.cli import main, parse
from tests.unit.test_simulator_app import (
    HEX32,
    PATH,
    PROJECT,
    AppClient,
    assert_error,
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


# --- changing the limit at run time -------------------------------------------------------


def test_lowering_the_limit_caps_the_bucket_to_the_new_burst() -> None:
    """A lower limit keeps at most its burst of the tokens left, and refills at its rate."""
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(4, 4), clock=clock)
    sim = Sim(limiter=limiter)
    assert sim.statuses(2) == [200, 200]  # 2 tokens left
    limiter.set_limit(1, burst=1)
    assert sim.statuses(2) == [200, 429]
    assert sim.create().json() == throttled_body("1")
    clock.advance(0.5)
    assert sim.statuses(1) == [429]
    clock.advance(0.5)
    assert sim.statuses(2) == [200, 429]


def test_a_change_refills_at_the_old_rate_up_to_its_moment() -> None:
    """Tokens earned before the change are kept; the new rate applies from the change on."""
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(2, 2), clock=clock)
    sim = Sim(limiter=limiter)
    assert sim.statuses(3) == [200, 200, 429]
    clock.advance(1)  # 2 tokens earned at the old rate
    limiter.set_limit(0.5, burst=2)
    assert sim.statuses(2) == [200, 200]
    response = sim.create()
    assert response.headers["Retry-After"] == "2"  # one token at 0.5/s
    assert response.json() == throttled_body("0.5")


def test_removing_the_limit_then_setting_one_starts_full() -> None:
    """per_s None admits everything; a limit set afterwards starts with a full bucket."""
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(1, 1), clock=clock)
    sim = Sim(limiter=limiter)
    assert sim.statuses(2) == [200, 429]
    assert limiter.set_limit(None) is None
    assert sim.statuses(10) == [200] * 10
    assert limiter.set_limit(1, burst=3) == RateLimit(1.0, 3)
    assert sim.statuses(4) == [200, 200, 200, 429]


def test_put_rate_limit_changes_the_running_limit() -> None:
    """PUT /_sim/rate-limit sets, GET shows, and per_s null removes the limit."""
    sim = Sim()
    assert sim.client.get("/_sim/rate-limit").json() == {"per_s": None, "burst": None}
    response = sim.client.request("PUT", "/_sim/rate-limit", json={"per_s": 1, "burst": 2})
    assert response.json() == {"per_s": 1.0, "burst": 2}
    assert sim.client.get("/_sim/rate-limit").json() == {"per_s": 1.0, "burst": 2}
    assert sim.statuses(3) == [200, 200, 429]
    response = sim.client.request("PUT", "/_sim/rate-limit", json={"per_s": 2.5})
    assert response.json() == {"per_s": 2.5, "burst": 3}
    response = sim.client.request("PUT", "/_sim/rate-limit", json={"per_s": None})
    assert response.json() == {"per_s": None, "burst": None}
    assert sim.statuses(5) == [200] * 5


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b"not json", "body"),
        (b"[1]", "body"),
        (b"{}", "per_s"),
        (b'{"burst": 2}', "per_s"),
        (b'{"per_s": 1, "extra": 1}', "extra"),
        (b'{"per_s": "5"}', "per_s"),
        (b'{"per_s": true}', "per_s"),
        (b'{"per_s": 0}', "per_s"),
        (b'{"per_s": -1}', "per_s"),
        (b'{"per_s": Infinity}', "per_s"),
        (b'{"per_s": NaN}', "per_s"),
        (b'{"per_s": 1, "burst": 0}', "burst"),
        (b'{"per_s": 1, "burst": 1.5}', "burst"),
        (b'{"per_s": 1, "burst": false}', "burst"),
        (b'{"per_s": null, "burst": 2}', "burst"),
    ],
)
def test_put_rate_limit_rejects_bad_bodies(content: bytes, field: str) -> None:
    """A bad PUT /_sim/rate-limit is 400 DBS.280001 naming the field; the limit stays."""
    sim = limited(3, burst=4)
    response = sim.client.request("PUT", "/_sim/rate-limit", content=content)
    message = assert_error(response, 400, "DBS.280001")
    assert message.startswith(f"Invalid parameter: {field}:")
    assert sim.client.get("/_sim/rate-limit").json() == {"per_s": 3.0, "burst": 4}


def test_server_set_rate_limit_changes_its_limiter() -> None:
    """SimulatorServer starts with the config's limit; set_rate_limit changes it, or raises."""
    server = SimulatorServer(SimulatorConfig(rate_limit_per_s=5))
    assert server.rate_limit == RateLimit(5.0, 5)
    server.set_rate_limit(2, 4)
    assert server.rate_limit == server.rate_limiter.limit == RateLimit(2.0, 4)
    with pytest.raises(ValueError, match=r"^per_s:"):
        server.set_rate_limit(0)
    assert server.rate_limit == RateLimit(2.0, 4)
    server.set_rate_limit(None)
    assert server.rate_limit is None


def test_make_app_takes_one_clock_for_the_limit() -> None:
    """Passing both a rate limiter and a monotonic clock is refused as ambiguous."""
    with pytest.raises(ValueError, match=r"^monotonic:"):
        make_app(
            SimulatorConfig(), SimulatorState(), monotonic=FakeClock(), rate_limiter=RateLimiter()
        )


# --- config and CLI -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"rate_limit_per_s": 0}, "rate_limit_per_s"),
        ({"rate_limit_per_s": -1.0}, "rate_limit_per_s"),
        ({"rate_limit_per_s": math.inf}, "rate_limit_per_s"),
        ({"rate_limit_per_s": math.nan}, "rate_limit_per_s"),
        ({"rate_limit_per_s": True}, "rate_limit_per_s"),
        ({"rate_limit_per_s": "5"}, "rate_limit_per_s"),
        ({"rate_limit_per_s": 5, "rate_limit_burst": 0}, "rate_limit_burst"),
        ({"rate_limit_per_s": 5, "rate_limit_burst": 2.5}, "rate_limit_burst"),
        ({"rate_limit_per_s": 5, "rate_limit_burst": True}, "rate_limit_burst"),
        ({"rate_limit_burst": 5}, "rate_limit_burst"),
    ],
)
def test_config_rejects_bad_rate_limits(kwargs: dict[str, Any], field: str) -> None:
    """A bad rate limit raises ValueError whose message starts with the field's name."""
    with pytest.raises(ValueError, match=rf"^{re.escape(field)}:"):
        SimulatorConfig(**kwargs)


@pytest.mark.parametrize(
    ("per_s", "burst", "limit"),
    [
        (None, None, None),
        (200, None, RateLimit(200.0, 200)),
        (2.5, None, RateLimit(2.5, 3)),
        (0.25, None, RateLimit(0.25, 1)),
        (10, 50, RateLimit(10.0, 50)),
    ],
)
def test_config_rate_limit_fills_in_the_default_burst(
    per_s: float | None, burst: int | None, limit: RateLimit | None
) -> None:
    """config.rate_limit() is None without a rate, else the rate with burst max(1, ceil(rate))."""
    config = SimulatorConfig(rate_limit_per_s=per_s, rate_limit_burst=burst)
    assert config.rate_limit() == limit


def test_cli_rate_limit_flags_parse_into_the_config() -> None:
    """--rate-limit-per-s and --rate-limit-burst land in the config; both default to None."""
    args = parse(["--rate-limit-per-s", "2.5", "--rate-limit-burst", "7"])
    config = args.config
    assert (config.rate_limit_per_s, config.rate_limit_burst) == (2.5, 7)
    assert config.rate_limit() == RateLimit(2.5, 7)
    defaults = parse([]).config
    assert (defaults.rate_limit_per_s, defaults.rate_limit_burst) == (None, None)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rate-limit-per-s", "0"], "rate_limit_per_s:"),
        (["--rate-limit-burst", "3"], "rate_limit_burst:"),
        (["--rate-limit-per-s", "5", "--rate-limit-burst", "0"], "rate_limit_burst:"),
        (["--rate-limit-burst", "1.5"], "--rate-limit-burst"),
    ],
)
def test_cli_rejects_bad_rate_limits(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad rate-limit option exits with status 2 and says which, without serving."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


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
