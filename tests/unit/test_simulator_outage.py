"""The simulator's outage window (``/_sim/outage``) and create-call log (``/_sim/create-calls``)
(no network; the app's clock is injected)."""

from __future__ import annotations

from htap_sync.simulator import SimulatorConfig, SimulatorState, make_app
from tests.unit.sim_app import PATH, AppClient, assert_error, body


class Clock:
    """Monotonic seconds that move only when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _client() -> tuple[AppClient, SimulatorState, Clock]:
    clock = Clock()
    state = SimulatorState()
    return AppClient(make_app(SimulatorConfig(), state, monotonic=clock)), state, clock


def test_an_outage_answers_500_until_it_ends_and_creates_nothing() -> None:
    """Within the window every valid create is 500 DBS.108000 and creates nothing; after it,
    creates work again; GET shows what is left and how many it answered."""
    client, state, clock = _client()
    assert client.request("PUT", "/_sim/outage", json={"seconds": 20}).json() == {
        "remaining_s": 20.0,
        "answered": 0,
    }
    for n in range(3):
        assert_error(client.post(PATH, json=body(task_name=f"t_{n}")), 500, "DBS.108000")
    clock.now += 19.5
    assert client.get("/_sim/outage").json() == {"remaining_s": 0.5, "answered": 3}
    assert_error(client.post(PATH, json=body(task_name="t_3")), 500, "DBS.108000")
    assert state.created == 0
    clock.now += 0.5
    assert client.post(PATH, json=body(task_name="t_4")).status_code == 200
    assert state.created == 1
    assert client.get("/_sim/outage").json() == {"remaining_s": 0.0, "answered": 4}


def test_an_outage_ends_early_with_zero_and_leaves_4xx_alone() -> None:
    """``seconds: 0`` ends a window; a bad body is still 400, not 500, during a window."""
    client, _, _ = _client()
    client.request("PUT", "/_sim/outage", json={"seconds": 60})
    assert_error(client.post(PATH, json=body(task_name="x")), 400, "DBS.280001")
    client.request("PUT", "/_sim/outage", json={"seconds": 0})
    assert client.post(PATH, json=body(task_name="ok_now")).status_code == 200


def test_a_bad_outage_body_is_refused_and_changes_nothing() -> None:
    """Not an object, another field, a string, a bool or out of range: 400 DBS.280001."""
    client, _, _ = _client()
    bad_bodies: list[object] = [[], {"seconds": 5, "x": 1}, {"seconds": "5"}, {"seconds": True}]
    for bad in [*bad_bodies, {"seconds": -1}, {"seconds": 86_401}]:
        assert_error(client.request("PUT", "/_sim/outage", json=bad), 400, "DBS.280001")
    assert client.get("/_sim/outage").json() == {"remaining_s": 0.0, "answered": 0}


def test_create_calls_lists_arrivals_with_and_without_throttled_ones() -> None:
    """Every create call the rate limit saw, on the app's clock; ``admitted`` leaves out 429s."""
    clock = Clock()
    state = SimulatorState()
    config = SimulatorConfig(rate_limit_per_s=1.0, rate_limit_burst=1)
    client = AppClient(make_app(config, state, monotonic=clock))
    assert client.post(PATH, json=body(task_name="t_a")).status_code == 200
    assert client.post(PATH, json=body(task_name="t_b")).status_code == 429
    clock.now += 1.0
    assert client.post(PATH, json=body(task_name="t_c")).status_code == 200
    assert client.get("/_sim/create-calls").json() == {
        "times": [100.0, 100.0, 101.0],
        "admitted": [100.0, 101.0],
    }
