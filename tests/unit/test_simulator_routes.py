"""Tests of the simulator's list route, request ids, unknown routes and admin routes
(no network)."""

from __future__ import annotations

import pytest

from htap_sync.simulator.state import Task
from tests.unit.sim_app import (
    HEX32,
    INSTANCE,
    PATH,
    PROJECT,
    SOURCE,
    assert_error,
    body,
    client_for,
)

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
    ("method", "url"), [("GET", "/v3/nowhere"), ("PATCH", PATH), ("DELETE", "/_sim/stats")]
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
