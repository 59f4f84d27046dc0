"""Operation looks share list calls per instance (worker/delivery/shared_look.py), on the
in-memory store: a round of looks over N tickets costs one list call; a snapshot whose list
call started before a ticket's moment (its submission, its call's answer) never decides it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from htap_sync.common.models import TicketState, parse_request
from htap_sync.worker.api.client import TaurusClient
from tests.conftest import request_data
from tests.unit.test_configured_memory import BASE_URL, Rig, rig_for
from tests.unit.test_operations_memory import ROW, _job_answers, calls, deliver, operate

N = 10


@pytest.fixture
def rig() -> Iterator[Rig]:
    """A simulator whose tasks sync at once and whose operation jobs end at once."""
    yield from rig_for()


def ref_of(payload: dict[str, Any]) -> str:
    return f"{payload['project_id']}/{payload['instance_id']}"


def plant(rig: Rig, ref: str, rows: dict[str, str]) -> int:
    """A list call's snapshot kept as another worker's would be: its number."""
    lister = rig.store.claim_list(ref, hold_s=10.0)
    assert lister is not None
    assert rig.store.record_list(ref, lister[0], lister[1], rows, ttl_s=60)
    return lister[0]


def test_a_round_of_looks_over_n_tickets_costs_one_list_call(rig: Rig) -> None:
    """N pauses on one instance, delivered in turn: the looks before acting share one list
    call, the looks after the calls were answered share one more (not 2 N)."""
    payloads = [request_data(task_name=f"shared_{i}") for i in range(N)]
    for payload in payloads:
        ticket, run, _ = rig.store.submit(parse_request(payload))
        assert rig.deliver(ticket, run, payload).reason == "created"
    before = calls(rig, "GET", "/")
    tickets = [operate(rig, "pause", payload)[:2] for payload in payloads]
    assert [deliver(rig, t, r).reason for t, r in tickets] == ["operation"] * N
    assert calls(rig, "POST", "/pause") == N and calls(rig, "GET", "/") - before == 1
    assert [deliver(rig, t, r).reason for t, r in tickets] == ["created"] * N
    assert calls(rig, "GET", "/") - before == 2
    assert {rig.store.get(t).state for t, _ in tickets} == {TicketState.SUCCEEDED}


def test_a_snapshot_older_than_the_submission_never_decides_the_first_look(rig: Rig) -> None:
    """The instance listed empty, then the task was created, then its delete submitted: the
    delete's look does not trust the older snapshot (it would say "absent": done, nothing
    sent); it lists again, sees the task and sends the DELETE."""
    payload = request_data()
    plant(rig, ref_of(payload), {})
    ticket, run, _ = rig.store.submit(parse_request(payload))
    assert rig.deliver(ticket, run, payload).reason == "created"
    ticket, run, _ = operate(rig, "delete", payload)
    assert deliver(rig, ticket, run).reason == "operation"
    assert calls(rig, "DELETE", "/") == 1 and calls(rig, "GET", "/") == 1


class Counting:
    """Scripted answers (see test_operations_memory), counting the list calls."""

    def __init__(self, answers: dict[tuple[str, str], httpx.Response]) -> None:
        self.answers = answers
        self.lists = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        tail = request.url.path.rsplit("/", 1)[-1]
        self.lists += (request.method, tail) == ("GET", "replication")
        return self.answers[(request.method, tail)]


def test_a_snapshot_from_a_call_started_before_the_answer_never_ends_the_ticket(
    rig: Rig,
) -> None:
    """A pause looks at a fresh snapshot (no list call of its own) and sends; a list call that
    started before the pause was answered keeps rows showing it Paused; the next look does
    not take them for done: it lists itself (the service still shows Full) and waits on."""
    api = Counting(_job_answers("Running"))  # the list shows ROW (Full); the job runs on
    rig.client = TaurusClient(httpx.Client(base_url=BASE_URL, transport=httpx.MockTransport(api)))
    payload = request_data()
    ref, name = ref_of(payload), ROW["task_name"]
    ticket, run, _ = operate(rig, "pause", payload)
    plant(rig, ref, {name: json.dumps({"task_name": name, "stage": "Full"})})
    in_flight = rig.store.claim_list(ref, hold_s=10.0)  # starts before the pause's answer
    assert in_flight is not None
    assert deliver(rig, ticket, run).reason == "operation"
    assert api.lists == 0 and rig.store.look_after(ticket) == in_flight[0]
    paused = {name: json.dumps({"task_name": name, "stage": "Paused"})}
    assert rig.store.record_list(ref, in_flight[0], in_flight[1], paused, ttl_s=60)
    assert deliver(rig, ticket, run).reason == "operation"  # not "created"
    assert api.lists == 1 and rig.store.get(ticket).state is not TicketState.SUCCEEDED
    assert deliver(rig, ticket, run).reason == "operation"  # each look needs a newer call
    assert api.lists == 2
