"""Tests of changing the simulator's rate limit at run time, and of its config and CLI flags."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from htap_sync.simulator import (
    RateLimit,
    RateLimiter,
    SimulatorConfig,
    SimulatorServer,
    SimulatorState,
    make_app,
)
from htap_sync.simulator.cli import main, parse
from tests.unit.sim_app import (
    assert_error,
)
from tests.unit.sim_rate import FakeClock, Sim, limited, throttled_body

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
