"""Tests of the simulator's routes, validation, store, faults, config and CLI (no network)."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette

from htap_sync.simulator import SimulatorConfig, SimulatorState, make_app
from htap_sync.simulator.cli import main, parse
from htap_sync.simulator.config import FAULT_RATE_FIELDS
from htap_sync.simulator.faults import FAULT_OF_RATE, CreateFault, Faults
from htap_sync.simulator.state import Task

PROJECT = "0123456789abcdef0123456789abcdef"
INSTANCE = "0f1e2d3c4b5a69788796a5b4c3d2e1f0in17"
OTHER_INSTANCE = "590031445ef845bb912d7fc8243db80cin17"
SOURCE = "1a2b3c4d5e6f708192a3b4c5d6e7f809in07"
PATH = f"/v3/{PROJECT}/instances/{INSTANCE}/starrocks/databases/replication"
HEX32 = re.compile(r"[0-9a-f]{32}")


class AppClient:
    """Synchronous calls into an ASGI app through httpx.ASGITransport (no network)."""

    def __init__(self, app: Starlette) -> None:
        self._app = app

    def request(self, method: str, url: str, **kwargs: object) -> httpx.Response:
        """Send one request on a fresh event loop and return the read response."""

        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self._app)
            async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
                return await client.request(method, url, **kwargs)  # type: ignore[arg-type]

        return asyncio.run(send())

    def get(self, url: str, **kwargs: object) -> httpx.Response:
        """GET ``url``."""
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: object) -> httpx.Response:
        """POST ``url``."""
        return self.request("POST", url, **kwargs)


def body(**overrides: object) -> dict[str, object]:
    """A valid create body, with some fields replaced (None removes a field)."""
    base: dict[str, object] = {
        "source_instance_id": SOURCE,
        "source_database": "src_db",
        "target_database": "tgt_db",
        "task_name": "task_orders_001",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def client_for(config: SimulatorConfig | None = None) -> tuple[AppClient, SimulatorState]:
    """An app with a fresh state, and the state to inspect."""
    state = SimulatorState()
    return AppClient(make_app(config or SimulatorConfig(), state)), state


def assert_error(response: httpx.Response, status: int, code: str) -> str:
    """Check an error answer's status and code; return its message."""
    assert response.status_code == status, response.text
    payload = response.json()
    assert set(payload) == {"error_code", "error_msg"}
    assert payload["error_code"] == code
    message: str = payload["error_msg"]
    return message


# --- create -------------------------------------------------------------------------------


def test_create_returns_job_id_and_stores_task() -> None:
    """A valid create answers 200 with a 32-hex job id and stores exactly one task."""
    client, state = client_for()
    response = client.post(PATH, json=body(source_node_id="node01"))
    assert response.status_code == 200, response.text
    job_id = response.json()["job_id"]
    assert HEX32.fullmatch(job_id)
    [task] = state.tasks(PROJECT, INSTANCE)
    assert task == Task(
        project_id=PROJECT,
        instance_id=INSTANCE,
        task_name="task_orders_001",
        source_instance_id=SOURCE,
        source_node_id="node01",
        source_database="src_db",
        target_database="tgt_db",
        job_id=job_id,
    )
    assert (state.create_calls, state.created) == (1, 1)
    assert state.creates_for(PROJECT, INSTANCE, "task_orders_001") == 1


def test_job_ids_are_distinct() -> None:
    """Every created task gets its own job id."""
    client, _ = client_for()
    job_ids = {
        client.post(PATH, json=body(task_name=f"task_{n:03d}")).json()["job_id"] for n in range(20)
    }
    assert len(job_ids) == 20


def test_duplicate_task_name_is_refused_and_not_created_twice() -> None:
    """A second create with the same task_name gets 409 DBS.280005 and creates nothing."""
    client, state = client_for()
    assert client.post(PATH, json=body()).status_code == 200
    message = assert_error(client.post(PATH, json=body(target_database="other")), 409, "DBS.280005")
    assert message == "Task name already exists."
    assert state.create_calls == 2
    assert state.created == 1
    assert state.creates_for(PROJECT, INSTANCE, "task_orders_001") == 1
    assert state.create_answers() == {200: 1, 409: 1}


def test_same_task_name_on_another_instance_is_a_new_task() -> None:
    """Task names are unique per instance, not globally."""
    client, state = client_for()
    other = PATH.replace(INSTANCE, OTHER_INSTANCE)
    assert client.post(PATH, json=body()).status_code == 200
    assert client.post(other, json=body()).status_code == 200
    assert state.created == 2
    assert len(state.tasks(PROJECT, OTHER_INSTANCE)) == 1


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (body(source_instance_id=None), "source_instance_id"),
        (body(source_instance_id=""), "source_instance_id"),
        (body(source_instance_id=SOURCE + "x"), "source_instance_id"),
        (body(source_instance_id=SOURCE.replace("in07", "in-7")), "source_instance_id"),
        (body(source_instance_id=123), "source_instance_id"),
        (body(source_node_id=7), "source_node_id"),
        (body(source_database=None), "source_database"),
        (body(source_database="ab"), "source_database"),
        (body(source_database="a" * 1025), "source_database"),
        (body(source_database="src-db"), "source_database"),
        (body(target_database="tg"), "target_database"),
        (body(target_database="t" * 129), "target_database"),
        (body(target_database="tgt db"), "target_database"),
        (body(task_name=None), "task_name"),
        (body(task_name="ab"), "task_name"),
        (body(task_name="t" * 129), "task_name"),
        (body(task_name="täsk"), "task_name"),
        (body(task_name=["task_a"]), "task_name"),
        (body(task_name="任务任务"), "task_name"),
        (body(extra="x"), "extra"),
    ],
)
def test_invalid_field_is_400_naming_the_field(payload: dict[str, object], field: str) -> None:
    """Each broken field rule answers 400 DBS.280001 naming that field, and creates nothing."""
    client, state = client_for()
    message = assert_error(client.post(PATH, json=payload), 400, "DBS.280001")
    assert message.startswith(f"Invalid parameter: {field}: ")
    assert state.created == 0
    assert state.create_calls == 1


@pytest.mark.parametrize(
    "raw", [b"", b"{", b"[]", b'"task"', b"null", b"\xff\xfe", b'{"task_name": "abc"'], ids=repr
)
def test_malformed_or_non_object_body_is_400(raw: bytes) -> None:
    """A body that is not a JSON object answers 400 DBS.280001 about the body."""
    client, _ = client_for()
    response = client.post(PATH, content=raw, headers={"Content-Type": "application/json"})
    assert assert_error(response, 400, "DBS.280001") == (
        "Invalid parameter: body: must be a JSON object"
    )


@pytest.mark.parametrize(
    ("project_id", "instance_id", "field"),
    [
        (PROJECT[:-1], INSTANCE, "project_id"),
        (PROJECT + "0", INSTANCE, "project_id"),
        (PROJECT[:-1] + "_", INSTANCE, "project_id"),
        (PROJECT, INSTANCE[:-1], "instance_id"),
        (PROJECT, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "instance_id"),
    ],
)
def test_invalid_path_id_is_400(project_id: str, instance_id: str, field: str) -> None:
    """Project and instance ids of the wrong length or alphabet answer 400 naming the id."""
    client, _ = client_for()
    path = f"/v3/{project_id}/instances/{instance_id}/starrocks/databases/replication"
    for response in (client.post(path, json=body()), client.get(path)):
        assert assert_error(response, 400, "DBS.280001").startswith(f"Invalid parameter: {field}:")


def test_any_instance_suffix_is_accepted() -> None:
    """Only length and alphabet are checked: in07, in17 or anything else is fine."""
    client, _ = client_for()
    path = PATH.replace("in17", "zz99")
    assert client.post(path, json=body()).status_code == 200


def test_boundary_lengths_are_accepted() -> None:
    """Names of exactly 3 and of exactly the maximum length pass."""
    client, state = client_for()
    assert client.post(PATH, json=body(task_name="abc", source_database="a_b")).status_code == 200
    longest = body(task_name="t" * 128, target_database="T" * 128, source_database="s" * 1024)
    assert client.post(PATH, json=longest).status_code == 200
    assert state.created == 2


def test_null_source_node_id_means_omitted() -> None:
    """source_node_id may be omitted or null."""
    client, state = client_for()
    assert client.post(PATH, json=body(task_name="t_a")).status_code == 200
    raw = json.dumps({**body(task_name="t_b"), "source_node_id": None})
    assert client.post(PATH, content=raw).status_code == 200
    assert [t.source_node_id for t in state.tasks(PROJECT, INSTANCE)] == [None, None]


_VALID_NAME = st.from_regex(r"[A-Za-z0-9_]{3,128}", fullmatch=True)


@given(task_name=_VALID_NAME, target=_VALID_NAME)
def test_any_valid_name_is_accepted(task_name: str, target: str) -> None:
    """Every name of 3-128 letters, digits or _ is accepted and stored unchanged."""
    client, state = client_for()
    response = client.post(PATH, json=body(task_name=task_name, target_database=target))
    assert response.status_code == 200, response.text
    [task] = state.tasks(PROJECT, INSTANCE)
    assert (task.task_name, task.target_database) == (task_name, target)


@given(
    prefix=st.from_regex(r"[A-Za-z0-9_]{0,10}", fullmatch=True),
    # Surrogates (Cs) cannot be encoded as JSON text at all: no client can send them.
    bad=st.characters(exclude_characters="".join(map(chr, range(128))), exclude_categories=["Cs"])
    | st.sampled_from("-. /$\n"),
)
def test_any_name_with_a_foreign_character_is_rejected(prefix: str, bad: str) -> None:
    """A task name with any character outside [A-Za-z0-9_] is refused."""
    client, state = client_for()
    response = client.post(PATH, json=body(task_name=f"{prefix}{bad}abc"))
    assert assert_error(response, 400, "DBS.280001").startswith("Invalid parameter: task_name:")
    assert state.created == 0


def test_unknown_instance_is_400_not_found() -> None:
    """An HTAP instance in unknown_instances answers 400 DBS.200022, on create and list."""
    client, state = client_for(SimulatorConfig(unknown_instances=frozenset({INSTANCE})))
    assert assert_error(client.post(PATH, json=body()), 400, "DBS.200022") == "Instance not found."
    assert_error(client.get(PATH), 400, "DBS.200022")
    assert state.created == 0


def test_unknown_source_instance_is_400_not_found() -> None:
    """A source TaurusDB instance in unknown_instances answers 400 DBS.200022 too."""
    client, state = client_for(SimulatorConfig(unknown_instances=frozenset({SOURCE})))
    assert_error(client.post(PATH, json=body()), 400, "DBS.200022")
    assert state.created == 0


# --- list ---------------------------------------------------------------------------------


def test_list_empty_instance() -> None:
    """An instance without tasks lists total_count "0" and no replications; the call counts."""
    client, state = client_for()
    response = client.get(PATH)
    assert response.status_code == 200
    assert response.json() == {"total_count": "0", "replications": []}
    assert (state.list_calls, state.create_calls) == (1, 0)


def test_list_shows_tasks_in_creation_order() -> None:
    """Created tasks are listed in creation order with the documented fields."""
    client, _ = client_for()
    for name in ("task_c", "task_a", "task_b"):
        assert client.post(PATH, json=body(task_name=name)).status_code == 200
    payload = client.get(PATH).json()
    assert payload["total_count"] == "3"
    assert [r["task_name"] for r in payload["replications"]] == ["task_c", "task_a", "task_b"]
    # Without stage timings a task is syncing at once; capitalised, as the live service answers.
    assert payload["replications"][0] == {
        "task_name": "task_c",
        "source_database": "src_db",
        "target_database": "tgt_db",
        "status": "Yes",
        "stage": "Incremental",
        "percentage": "100",
        "is_need_repair": False,
        "is_main_task": True,
    }


def test_list_pages_with_limit_and_offset() -> None:
    """limit and offset slice the list; total_count stays the full count."""
    client, _ = client_for()
    for n in range(7):
        client.post(PATH, json=body(task_name=f"task_{n}"))
    payload = client.get(PATH, params={"limit": "3", "offset": "5"}).json()
    assert payload["total_count"] == "7"
    assert [r["task_name"] for r in payload["replications"]] == ["task_5", "task_6"]
    assert client.get(PATH, params={"offset": "7"}).json()["replications"] == []


def test_list_default_limit_is_100() -> None:
    """Without limit, at most 100 tasks come back."""
    client, state = client_for()
    for n in range(105):
        state.create_task(
            Task(PROJECT, INSTANCE, f"task_{n:03d}", SOURCE, None, "src_db", "tgt_db", f"{n:032x}")
        )
    payload = client.get(PATH).json()
    assert payload["total_count"] == "105"
    assert len(payload["replications"]) == 100
    assert payload["replications"][-1]["task_name"] == "task_099"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "abc"}, "limit"),
        ({"limit": ""}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "1e2"}, "limit"),
        ({"limit": "9" * 50}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"offset": "x"}, "offset"),
        ({"offset": " 1"}, "offset"),
    ],
)
def test_list_bad_paging_is_400(params: dict[str, str], field: str) -> None:
    """limit outside 1-100 or a negative / non-integer offset answers 400 naming it."""
    client, _ = client_for()
    message = assert_error(client.get(PATH, params=params), 400, "DBS.280001")
    assert message.startswith(f"Invalid parameter: {field}:")


# --- request id, unknown routes, admin ----------------------------------------------------


def test_every_response_has_a_fresh_request_id() -> None:
    """Success, error, 404 and admin answers all carry a distinct 32-hex X-Request-Id."""
    client, _ = client_for()
    responses = [
        client.post(PATH, json=body()),
        client.post(PATH, json=body()),  # 409
        client.post(PATH, json=body(task_name="x")),  # 400
        client.get(PATH),
        client.get("/nowhere"),
        client.get("/_sim/stats"),
        client.get("/_sim/healthz"),
    ]
    ids = [r.headers.get("X-Request-Id", "") for r in responses]
    assert all(HEX32.fullmatch(i) for i in ids), ids
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize(
    ("method", "url"), [("GET", "/v3/nowhere"), ("PUT", PATH), ("DELETE", "/_sim/stats")]
)
def test_unknown_route_or_method_is_404_apigw(method: str, url: str) -> None:
    """Anything but the known routes answers 404 APIGW.0101, like the gateway."""
    client, state = client_for()
    assert_error(client.request(method, url), 404, "APIGW.0101")
    assert state.create_calls == 0


def test_stats_is_the_state_snapshot() -> None:
    """GET /_sim/stats returns state.snapshot() as JSON."""
    client, state = client_for()
    client.post(PATH, json=body())
    client.post(PATH, json=body())
    stats = client.get("/_sim/stats").json()
    assert stats == state.snapshot()
    assert stats["create_calls"] == 2
    assert stats["created"] == 1
    assert stats["create_answers"] == {"200": 1, "409": 1}
    assert (stats["list_calls"], stats["faults"], stats["script"]) == (0, {}, [])
    assert stats["instances"] == [{"project_id": PROJECT, "instance_id": INSTANCE, "tasks": 1}]
    assert stats["created_more_than_once"] == []


def test_healthz() -> None:
    """GET /_sim/healthz answers {"ok": true}."""
    client, _ = client_for()
    response = client.get("/_sim/healthz")
    assert (response.status_code, response.json()) == (200, {"ok": True})


# --- faults -------------------------------------------------------------------------------


def test_fail_rate_one_fails_every_valid_create_before_creating() -> None:
    """With fail_rate=1 every valid create is 500 DBS.108000 and nothing is stored."""
    client, state = client_for(SimulatorConfig(fail_rate=1.0))
    for _ in range(3):
        message = assert_error(client.post(PATH, json=body()), 500, "DBS.108000")
        assert message == "Internal server error."
    assert (state.create_calls, state.created) == (3, 0)
    assert state.tasks(PROJECT, INSTANCE) == []
    assert state.create_answers() == {500: 3}


def test_faults_do_not_hide_client_errors() -> None:
    """An invalid body gets its 400 even when every create would fail."""
    client, _ = client_for(SimulatorConfig(fail_rate=1.0))
    assert_error(client.post(PATH, json=body(task_name="x")), 400, "DBS.280001")


def statuses(config: SimulatorConfig, calls: int) -> list[int]:
    """Status codes of ``calls`` creates with distinct task names."""
    client, _ = client_for(config)
    return [
        client.post(PATH, json=body(task_name=f"task_{n:03d}")).status_code for n in range(calls)
    ]


def test_fail_rate_is_reproducible_by_seed() -> None:
    """The same seed gives the same 200/500 sequence; the rate is roughly honoured."""
    first = statuses(SimulatorConfig(fail_rate=0.3, seed=1234), 60)
    assert first == statuses(SimulatorConfig(fail_rate=0.3, seed=1234), 60)
    assert set(first) == {200, 500}
    assert 8 <= first.count(500) <= 30  # seeded, so this is a fixed number, not a flake


def test_failed_create_can_be_retried() -> None:
    """A 500 created nothing: retrying the same task name later succeeds, once."""
    client, state = client_for(SimulatorConfig(fail_rate=0.5, seed=7))
    answers = [client.post(PATH, json=body()).status_code]
    assert answers == [500]  # seed 7 fails the first call; the rest of the test needs that
    assert state.tasks(PROJECT, INSTANCE) == []
    while 200 not in answers:
        answers.append(client.post(PATH, json=body()).status_code)
        assert len(answers) < 50
    assert state.creates_for(PROJECT, INSTANCE, "task_orders_001") == 1
    assert len(state.tasks(PROJECT, INSTANCE)) == 1


def test_faults_draw_once_per_call() -> None:
    """Faults stacks its rates on one seeded draw: 0 never fails, 1 always fails."""
    never = Faults(SimulatorConfig(fail_rate=0.0, seed=1))
    always = Faults(SimulatorConfig(fail_rate=1.0, seed=1))
    assert {never.create_fault() for _ in range(200)} == {CreateFault.NONE}
    assert {always.create_fault() for _ in range(200)} == {CreateFault.FAIL}


def test_every_rate_field_has_a_fault() -> None:
    """Each fault rate in the config maps to a fault kind (guards later additions)."""
    assert set(FAULT_RATE_FIELDS) == set(FAULT_OF_RATE)


def test_latency_is_applied_to_create_and_list() -> None:
    """latency_ms makes create and list await the injected sleep once each, in seconds."""
    slept: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(seconds)

    state = SimulatorState()
    client = AppClient(make_app(SimulatorConfig(latency_ms=250), state, sleep=record))
    client.post(PATH, json=body())
    client.get(PATH)
    client.get("/_sim/stats")
    assert slept == [0.25, 0.25]


def test_no_latency_means_no_sleep() -> None:
    """With latency_ms=0 the sleep is never awaited."""
    slept: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(seconds)

    client = AppClient(make_app(SimulatorConfig(), SimulatorState(), sleep=record))
    client.post(PATH, json=body())
    assert slept == []


def test_real_latency_delays_the_answer() -> None:
    """With the default sleep, a create takes at least latency_ms."""
    client, _ = client_for(SimulatorConfig(latency_ms=50))
    started = time.monotonic()
    client.post(PATH, json=body())
    assert time.monotonic() - started >= 0.045  # 5 ms slack for the event loop's clock


# --- state --------------------------------------------------------------------------------


def make_task(name: str, instance: str = INSTANCE) -> Task:
    """A task with fixed fields and the given name."""
    return Task(PROJECT, instance, name, SOURCE, None, "src_db", "tgt_db", "0" * 32)


def test_creates_for_counts_every_creation() -> None:
    """A task created, deleted and created again counts 2: the counter proves exactly-once."""
    state = SimulatorState()
    assert state.create_task(make_task("task_a"))
    assert not state.create_task(make_task("task_a"))
    assert state.delete_task(PROJECT, INSTANCE, "task_a") is not None
    assert state.create_task(make_task("task_a"))
    assert state.creates_for(PROJECT, INSTANCE, "task_a") == 2
    assert state.created == 2
    assert len(state.tasks(PROJECT, INSTANCE)) == 1
    assert state.snapshot()["created_more_than_once"] == [
        {"project_id": PROJECT, "instance_id": INSTANCE, "task_name": "task_a", "creates": 2}
    ]


def test_concurrent_creates_of_one_name_create_once() -> None:
    """Many threads racing to create the same task: exactly one wins."""
    state = SimulatorState()
    barrier = threading.Barrier(16)
    results: list[bool] = []
    lock = threading.Lock()

    def race() -> None:
        barrier.wait(timeout=10)
        won = state.create_task(make_task("task_race"))
        with lock:
            results.append(won)

    threads = [threading.Thread(target=race) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(results) == [False] * 15 + [True]
    assert state.creates_for(PROJECT, INSTANCE, "task_race") == 1


def test_snapshot_is_json() -> None:
    """snapshot() survives a JSON round trip unchanged."""
    state = SimulatorState()
    state.record_create_call()
    state.record_create_answer(200)
    state.create_task(make_task("task_a"))
    snapshot = state.snapshot()
    assert json.loads(json.dumps(snapshot)) == snapshot
    assert snapshot["tasks"] == 1


# --- config -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"latency_ms": -1}, "latency_ms"),
        ({"latency_ms": 1.5}, "latency_ms"),
        ({"latency_ms": True}, "latency_ms"),
        ({"fail_rate": -0.1}, "fail_rate"),
        ({"fail_rate": 1.01}, "fail_rate"),
        ({"fail_rate": float("nan")}, "fail_rate"),
        ({"fail_rate": "0.5"}, "fail_rate"),
        *(({name: 1.5}, name) for name in FAULT_RATE_FIELDS),
        ({"fail_rate": 0.5, "in_progress_rate": 0.6}, "fail_rate+in_progress_rate"),
        ({"hang_ms": -1}, "hang_ms"),
        ({"hang_ms": 0.5}, "hang_ms"),
        ({"retry_after_s": -1}, "retry_after_s"),
        ({"retry_after_s": 2.5}, "retry_after_s"),
        ({"retry_after_s": True}, "retry_after_s"),
        ({"seed": "1"}, "seed"),
        ({"token": ""}, "token"),
        ({"ak": "AK"}, "ak/sk"),
        ({"sk": "SK"}, "ak/sk"),
        ({"unknown_instances": INSTANCE}, "unknown_instances"),
        ({"unknown_instances": [1]}, "unknown_instances"),
    ],
)
def test_config_rejects_out_of_range_values(kwargs: dict[str, Any], field: str) -> None:
    """A bad setting raises ValueError whose message starts with the field's name."""
    with pytest.raises(ValueError, match=rf"^{re.escape(field)}:"):
        SimulatorConfig(**kwargs)


def test_config_hides_secrets_and_freezes_instances() -> None:
    """repr() omits token and sk; a list of unknown instances becomes a frozenset."""
    config = SimulatorConfig(
        token="tok-secret",
        ak="AK",
        sk="sk-secret",
        unknown_instances=[INSTANCE],  # type: ignore[arg-type]
    )
    assert "tok-secret" not in repr(config) and "sk-secret" not in repr(config)
    assert config.unknown_instances == frozenset({INSTANCE})
    assert config.fault_rates() == dict.fromkeys(FAULT_RATE_FIELDS, 0.0)


# --- CLI ----------------------------------------------------------------------------------


# The standalone simulator's pace (its CLI defaults; SimulatorConfig's own are 0).
CLI_PACE: dict[str, Any] = {"stage_wait_s": 1.0, "stage_full_s": 1.0, "job_appear_delay_s": 0.5}

EVERY_FAULT_OPTION = [
    *("--host", "127.0.0.1", "--port", "9000", "--token", "t", "--ak", "A", "--sk", "S"),
    *("--unknown-instance", INSTANCE, "--unknown-instance", OTHER_INSTANCE),
    *("--latency-ms", "5", "--fail-rate", "0.25", "--created-then-500-rate", "0.1"),
    *("--drop-after-create-rate", "0.05", "--hang-rate", "0.04"),
    *("--hang-after-create-rate", "0.03", "--throttle-rate", "0.2"),
    *("--in-progress-rate", "0.02", "--hang-ms", "1500", "--retry-after-s", "12", "--seed", "3"),
]


def test_cli_arguments_build_the_config() -> None:
    """Every CLI option lands in the SimulatorConfig."""
    args = parse(EVERY_FAULT_OPTION)
    assert (args.host, args.port) == ("127.0.0.1", 9000)
    assert args.config == SimulatorConfig(
        token="t",
        ak="A",
        sk="S",
        unknown_instances=frozenset({INSTANCE, OTHER_INSTANCE}),
        latency_ms=5,
        fail_rate=0.25,
        created_then_500_rate=0.1,
        drop_after_create_rate=0.05,
        hang_rate=0.04,
        hang_after_create_rate=0.03,
        hang_ms=1500,
        throttle_rate=0.2,
        retry_after_s=12,
        in_progress_rate=0.02,
        seed=3,
        **CLI_PACE,
    )


def test_cli_defaults_and_retry_after_none() -> None:
    """No options: no faults and the standalone pace; --retry-after-s none omits the header."""
    assert parse([]).config == SimulatorConfig(**CLI_PACE)
    args = parse(["--retry-after-s", "none"])
    assert args.config.retry_after_s is None


def test_cli_rejects_invalid_config(capsys: pytest.CaptureFixture[str]) -> None:
    """An out-of-range option exits with status 2 and names the field, without serving."""
    with pytest.raises(SystemExit) as exited:
        main(["--fail-rate", "2"])
    assert exited.value.code == 2
    assert "fail_rate" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--throttle-rate", "0.6", "--hang-rate", "0.5"], "hang_rate+throttle_rate:"),
        (["--hang-ms", "-1"], "hang_ms:"),
        (["--retry-after-s", "soon"], "--retry-after-s"),
    ],
)
def test_cli_rejects_invalid_fault_options(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fault options that break a config rule exit with status 2 and say which."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
