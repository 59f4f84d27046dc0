"""Tests of the create-call faults: what each answers and creates, seeded replay, the script."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest

from htap_sync.simulator import SimulatorConfig, SimulatorState, make_app
from htap_sync.simulator.cli import RATE_FLAGS as _RATE_FLAGS
from htap_sync.simulator.config import FAULT_RATE_FIELDS
from htap_sync.simulator.drop import ConnectionDropped, DropConnection
from htap_sync.simulator.faults import CreateFault, FaultStep, Hangs
from tests.unit.sim_app import (
    HEX32,
    INSTANCE,
    PATH,
    PROJECT,
    AppClient,
    assert_error,
    body,
)

NAME = "task_orders_001"


class Harness:
    """An app with a fresh state whose sleep records (seconds, tasks created at that moment)."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.state = SimulatorState()
        self.slept: list[tuple[float, int]] = []
        self.results: list[int | str] = []

        async def record(seconds: float) -> None:
            self.slept.append((seconds, self.state.created))

        self.client = AppClient(make_app(config, self.state, sleep=record))

    def create(self, name: str = NAME) -> httpx.Response:
        """POST a valid create for task ``name``."""
        return self.client.post(PATH, json=body(task_name=name))

    def outcome(self, name: str) -> int | str:
        """The status of one create, or "drop" if it got no answer at all."""
        try:
            return self.create(name).status_code
        except ConnectionDropped:
            return "drop"


def only(fault: str, **config: Any) -> Harness:
    """A harness where every valid create gets ``fault`` (its rate is 1)."""
    rate: dict[str, Any] = {f"{fault}_rate": 1.0}
    return Harness(SimulatorConfig(**rate, **config))


# --- each fault -----------------------------------------------------------------------------


def test_fail_answers_500_and_creates_nothing() -> None:
    """fail: 500 DBS.108000 and no task."""
    sim = only("fail")
    assert assert_error(sim.create(), 500, "DBS.108000") == "Internal server error."
    assert (sim.state.created, sim.state.faults_injected()) == (0, {"fail": 1})


def test_created_then_500_creates_once_then_answers_500() -> None:
    """created_then_500: the task exists yet the answer is 500; a retry creates nothing more."""
    sim = only("created_then_500")
    for _ in range(2):
        assert assert_error(sim.create(), 500, "DBS.108000") == "Internal server error."
    assert sim.state.created == 1
    assert sim.state.creates_for(PROJECT, INSTANCE, NAME) == 1
    assert [t.task_name for t in sim.state.tasks(PROJECT, INSTANCE)] == [NAME]
    assert sim.state.faults_injected() == {"created_then_500": 2}
    assert sim.state.create_answers() == {500: 2}


def test_drop_after_create_creates_and_answers_nothing() -> None:
    """drop_after_create: the task exists, the client gets no response (in-process: raised)."""
    sim = only("drop_after_create")
    with pytest.raises(ConnectionDropped):
        sim.create()
    assert (sim.state.create_calls, sim.state.created) == (1, 1)
    assert sim.state.creates_for(PROJECT, INSTANCE, NAME) == 1
    assert sim.state.create_answers() == {}  # no answer, so no status to count
    assert sim.state.faults_injected() == {"drop_after_create": 1}


def test_hang_holds_then_answers_500_and_creates_nothing() -> None:
    """hang: holds hang_ms (30 s by default) with nothing created, then 500; still nothing."""
    sim = only("hang")
    assert_error(sim.create(), 500, "DBS.108000")
    assert sim.slept == [(30.0, 0)]
    assert (sim.state.created, sim.state.faults_injected()) == (0, {"hang": 1})


def test_hang_after_create_creates_then_holds_then_answers_truly() -> None:
    """hang_after_create: creates, holds hang_ms, then the true answer (200, then 409)."""
    sim = only("hang_after_create", hang_ms=1500)
    first = sim.create()
    assert first.status_code == 200 and HEX32.fullmatch(first.json()["job_id"])
    assert_error(sim.create(), 409, "DBS.280005")
    assert sim.slept == [(1.5, 1), (1.5, 1)]  # the task existed while each call was held
    assert sim.state.creates_for(PROJECT, INSTANCE, NAME) == 1
    assert sim.state.faults_injected() == {"hang_after_create": 2}


@pytest.mark.parametrize(("retry_after_s", "header"), [(2, "2"), (12, "12"), (None, None)])
def test_throttle_answers_429_with_retry_after(retry_after_s: int | None, header: str) -> None:
    """throttle: 429 APIGW.0308 with Retry-After (omitted when None) and no task."""
    sim = only("throttle", retry_after_s=retry_after_s)
    response = sim.create()
    message = assert_error(response, 429, "APIGW.0308")
    assert message.startswith("The throttling threshold has been reached: policy user over ratel")
    assert response.headers.get("Retry-After") == header
    assert HEX32.fullmatch(response.headers["X-Request-Id"])
    assert (sim.state.created, sim.state.faults_injected()) == (0, {"throttle": 1})


def test_in_progress_answers_409_and_creates_nothing() -> None:
    """in_progress: 409 DBS.200047 "Another operation is in progress." and no task."""
    sim = only("in_progress")
    assert assert_error(sim.create(), 409, "DBS.200047") == "Another operation is in progress."
    assert (sim.state.created, sim.state.faults_injected()) == (0, {"in_progress": 1})


@pytest.mark.parametrize("fault", [f.value for f in CreateFault if f is not CreateFault.NONE])
def test_faults_never_hide_client_errors(fault: str) -> None:
    """Whatever the fault, an invalid body gets its 400, creates nothing and draws no fault."""
    sim = only(fault)
    assert_error(sim.client.post(PATH, json=body(task_name="x")), 400, "DBS.280001")
    assert (sim.state.created, sim.state.faults_injected(), sim.slept) == (0, {}, [])


def test_drop_connection_needs_the_dropping_app() -> None:
    """DropConnection used outside DroppingStarlette fails loudly instead of answering nothing."""

    async def call() -> None:
        async def receive() -> dict[str, Any]:
            return {"type": "http.disconnect"}

        async def send(message: Any) -> None:
            raise AssertionError("nothing may be sent")

        await DropConnection()({"type": "http"}, receive, send)

    with pytest.raises(RuntimeError, match="DroppingStarlette"):
        asyncio.run(call())


# --- seeded draws ---------------------------------------------------------------------------

# Every fault at 10%: 70% of calls get one, 30% none.
TEN_PERCENT_EACH: dict[str, Any] = dict.fromkeys(FAULT_RATE_FIELDS, 0.1)
EVERY_FAULT = SimulatorConfig(**TEN_PERCENT_EACH, seed=2024)


def outcomes(config: SimulatorConfig, calls: int, script: list[str] | None = None) -> Harness:
    """A harness after ``calls`` creates of distinct names (``script`` queued first)."""
    sim = Harness(config)
    sim.state.script(script or [])
    sim.results = [sim.outcome(f"task_{n:03d}") for n in range(calls)]
    return sim


def test_same_seed_replays_the_same_faults() -> None:
    """Same seed, same calls: the same answers, drops, hangs and fault counts, every kind seen."""
    first, second = outcomes(EVERY_FAULT, 200), outcomes(EVERY_FAULT, 200)
    assert first.results == second.results
    assert first.slept == second.slept
    assert first.state.faults_injected() == second.state.faults_injected()
    assert set(first.state.faults_injected()) == {f.value for f in CreateFault} - {"ok"}
    assert set(first.results) == {200, 500, 409, 429, "drop"}
    # Seeded, so these are fixed numbers, not a flake: roughly 10% each, 30% no fault.
    assert all(8 <= n <= 35 for n in first.state.faults_injected().values())


def test_another_seed_gives_other_faults() -> None:
    """A different seed gives a different fault sequence."""
    other = SimulatorConfig(**TEN_PERCENT_EACH, seed=2025)
    assert outcomes(EVERY_FAULT, 50).results != outcomes(other, 50).results


def test_rates_add_up_to_one_means_every_call_faults() -> None:
    """Rates summing to exactly 1 (even 0.1 + 0.2 + 0.7 in floats) leave no clean call."""
    config = SimulatorConfig(fail_rate=0.1, throttle_rate=0.2, in_progress_rate=0.7, seed=5)
    sim = outcomes(config, 100)
    assert sum(sim.state.faults_injected().values()) == 100
    assert sim.state.created == 0


def test_scripted_calls_still_draw() -> None:
    """Scripted calls consume their seeded draw, so the calls after them replay unchanged."""
    plain = outcomes(EVERY_FAULT, 60).results
    scripted = outcomes(EVERY_FAULT, 60, script=["ok"] * 5).results
    assert scripted[:5] == [200] * 5
    assert scripted[5:] == plain[5:]


# --- the script -----------------------------------------------------------------------------


def test_script_is_consumed_in_order_then_rates_apply() -> None:
    """Scripted steps answer the next creates in order; then the rates decide again."""
    sim = Harness(SimulatorConfig(fail_rate=1.0))
    assert sim.state.script(["throttle:12", "ok", CreateFault.IN_PROGRESS]) == [
        "throttle:12",
        "ok",
        "in_progress",
    ]
    throttled = sim.create()
    assert assert_error(throttled, 429, "APIGW.0308") and throttled.headers["Retry-After"] == "12"
    assert sim.create().status_code == 200
    assert_error(sim.create("task_b"), 409, "DBS.200047")
    assert sim.state.scripted() == []
    assert_error(sim.create("task_c"), 500, "DBS.108000")  # fail_rate=1 again
    assert sim.state.faults_injected() == {"throttle": 1, "in_progress": 1, "fail": 1}
    assert sim.state.created == 1


def test_script_steps_override_hang_ms() -> None:
    """hang:N and hang_after_create:N hold N ms; a bare hang holds the config's hang_ms."""
    sim = Harness(SimulatorConfig(hang_ms=4000))
    sim.state.script(["hang:250", "hang_after_create:10", "hang"])
    assert_error(sim.create("task_a"), 500, "DBS.108000")
    assert sim.create("task_b").status_code == 200
    assert_error(sim.create("task_c"), 500, "DBS.108000")
    assert sim.slept == [(0.25, 0), (0.01, 1), (4.0, 1)]


def test_invalid_calls_do_not_consume_the_script() -> None:
    """Only valid create calls take a step: a 400 leaves the script as it was."""
    sim = Harness(SimulatorConfig())
    sim.state.script(["fail"])
    assert_error(sim.client.post(PATH, json=body(task_name="x")), 400, "DBS.280001")
    assert sim.state.scripted() == ["fail"]
    assert_error(sim.create(), 500, "DBS.108000")


def test_script_admin_endpoint_queues_shows_and_clears() -> None:
    """POST /_sim/script appends, GET shows, DELETE empties; /_sim/stats shows the queue."""
    sim = Harness(SimulatorConfig())
    posted = sim.client.post("/_sim/script", json=["drop_after_create", "throttle:3"])
    assert (posted.status_code, posted.json()) == (
        200,
        {"script": ["drop_after_create", "throttle:3"]},
    )
    assert sim.client.post("/_sim/script", json=["ok"]).json() == {
        "script": ["drop_after_create", "throttle:3", "ok"]
    }
    assert sim.client.get("/_sim/stats").json()["script"] == [
        "drop_after_create",
        "throttle:3",
        "ok",
    ]
    with pytest.raises(ConnectionDropped):
        sim.create()
    assert sim.client.get("/_sim/script").json() == {"script": ["throttle:3", "ok"]}
    assert sim.client.request("DELETE", "/_sim/script").json() == {"script": []}
    assert sim.state.scripted() == []


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"steps": ["ok"]}, "body"),
        ("ok", "body"),
        (["ok", 3], "body[1]"),
        (["ok", "explode"], "body[1]"),
        (["fail:2"], "body[0]"),
        (["throttle:soon"], "body[0]"),
        (["hang:-5"], "body[0]"),
    ],
)
def test_script_admin_endpoint_rejects_bad_steps(payload: object, field: str) -> None:
    """A bad script answers 400 DBS.280001 naming the entry, and queues nothing."""
    sim = Harness(SimulatorConfig())
    sim.state.script(["ok"])
    message = assert_error(sim.client.post("/_sim/script", json=payload), 400, "DBS.280001")
    assert message.startswith(f"Invalid parameter: {field}: ")
    assert sim.state.scripted() == ["ok"]


def test_state_script_is_all_or_nothing() -> None:
    """state.script() with one bad step raises ValueError naming it and queues none."""
    state = SimulatorState()
    with pytest.raises(ValueError, match="'nope': unknown fault"):
        state.script(["fail", "nope"])
    assert state.scripted() == []


@pytest.mark.parametrize(
    ("text", "step"),
    [
        ("ok", FaultStep(CreateFault.NONE)),
        ("throttle", FaultStep(CreateFault.THROTTLE)),
        ("throttle:0", FaultStep(CreateFault.THROTTLE, retry_after_s=0)),
        ("hang:250", FaultStep(CreateFault.HANG, hang_ms=250)),
        ("hang_after_create:1", FaultStep(CreateFault.HANG_AFTER_CREATE, hang_ms=1)),
        ("created_then_500", FaultStep(CreateFault.CREATED_THEN_500)),
    ],
)
def test_fault_step_text_round_trips(text: str, step: FaultStep) -> None:
    """FaultStep.parse reads the script syntax and str() writes it back."""
    assert FaultStep.parse(text) == step
    assert str(step) == text


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fault": CreateFault.FAIL, "hang_ms": 5},
        {"fault": CreateFault.HANG, "retry_after_s": 5},
        {"fault": CreateFault.THROTTLE, "retry_after_s": -1},
        {"fault": CreateFault.HANG, "hang_ms": True},
    ],
)
def test_fault_step_rejects_misplaced_parameters(kwargs: dict[str, Any]) -> None:
    """A parameter the fault does not take, or out of range, is a ValueError."""
    with pytest.raises(ValueError, match=rf"^{kwargs['fault'].value}: "):
        FaultStep(**kwargs)


# --- hangs, config, CLI ---------------------------------------------------------------------


def test_release_ends_a_hold_early_and_later_holds_at_once() -> None:
    """Hangs.release() from another thread ends a 30 s hold now; later holds do not wait."""

    async def scenario() -> None:
        hangs = Hangs()
        holding = asyncio.create_task(hangs.hold(30.0, asyncio.sleep))
        while hangs.held == 0:
            await asyncio.sleep(0)  # let the hold register; one loop turn at a time
        releaser = threading.Thread(target=hangs.release)
        releaser.start()
        await asyncio.wait_for(holding, timeout=5)
        releaser.join()
        assert hangs.held == 0
        await asyncio.wait_for(hangs.hold(30.0, asyncio.sleep), timeout=1)

    asyncio.run(scenario())


def test_hold_zero_does_not_sleep() -> None:
    """A hang of 0 ms answers at once without awaiting the sleep."""
    sim = Harness(SimulatorConfig(hang_rate=1.0, hang_ms=0))
    assert_error(sim.create(), 500, "DBS.108000")
    assert sim.slept == []


def test_every_rate_has_a_cli_flag() -> None:
    """Each fault rate field has its --x-rate flag (argparse turns it into the field name)."""
    assert [flag[2:].replace("-", "_") for flag, _ in _RATE_FLAGS] == list(FAULT_RATE_FIELDS)


def test_default_config_injects_nothing() -> None:
    """By default every rate is 0, hangs last 30 s and a 429 says Retry-After: 2."""
    config = SimulatorConfig()
    assert set(config.fault_rates().values()) == {0.0}
    assert (config.hang_ms, config.retry_after_s) == (30_000, 2)
