"""Tests of the simulator's create route: job ids, duplicates, validation (no network)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from htap_sync.simulator import SimulatorConfig
from htap_sync.simulator.state import Task
from tests.unit.sim_app import (
    HEX32,
    INSTANCE,
    OTHER_INSTANCE,
    PATH,
    PROJECT,
    SOURCE,
    assert_error,
    body,
    client_for,
)

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
