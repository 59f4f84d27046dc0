"""A configured request's two phases on the in-memory store, against the simulator's app behind
httpx.MockTransport (no network, no Redis): configure once, read back, start; an alter error
deletes the task; a lost answer or a dead worker goes on from the phase the task is in."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from htap_sync.common.limits.gate import OPEN_GATE, Api
from htap_sync.common.models import TicketState, parse_request
from htap_sync.common.settings import Settings, load_settings
from htap_sync.common.tickets.claims_memory import MemoryClaimStore
from htap_sync.simulator import SimulatorConfig, SimulatorState, make_app
from htap_sync.simulator.lifecycle import ALTER_ERROR
from htap_sync.worker.api.client import TaurusClient
from htap_sync.worker.delivery.start import Delivery, no_enroll
from htap_sync.worker.delivery.ticket import Outcome, process_ticket
from htap_sync.worker.delivery.together import process_batch
from tests.conftest import request_data
from tests.scripted_api import FakeClock, refused
from tests.unit.test_models_selection import SELECTION

BASE_URL = "https://taurus.invalid"
REPLICATION = "/starrocks/databases/replication"


class Forward:
    """A MockTransport handler that hands every request to the simulator's ASGI app."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.state = SimulatorState()
        self.app = make_app(config, self.state)
        self.seen: list[tuple[str, str]] = []
        self.starts: list[httpx.Response] = []  # answers the create calls get instead
        self.lists: list[httpx.Response] = []  # answers the list calls get instead

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.seen.append((request.method, path.split(REPLICATION, 1)[-1] or "/"))
        if self.seen[-1] == ("POST", "/") and self.starts:
            return self.starts.pop(0)
        if self.seen[-1] == ("GET", "/") and self.lists:
            return self.lists.pop(0)
        content = request.read()

        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
                answer = await client.request(
                    request.method,
                    str(request.url.copy_with(scheme="http", host="sim")),
                    content=content,
                    headers=dict(request.headers),
                )
                await answer.aread()
                return httpx.Response(
                    answer.status_code, headers=answer.headers, content=answer.content
                )

        return asyncio.run(send())


@dataclass
class RecordingGate:
    """A gate that lets every call through and remembers which API each was for."""

    apis: list[Api] = field(default_factory=list)

    def before_call(
        self, project_id: str, api: Api, lane: str | None = None, tenant: str | None = None
    ) -> None:
        self.apis.append(api)

    def after_call(self, project_id: str, api: Api, error: object) -> None:
        """Nothing to remember."""


@dataclass
class Rig:
    """One test's worker: the memory store, a client into the simulator, a hand-moved clock."""

    settings: Settings
    store: MemoryClaimStore
    api: Forward
    client: TaurusClient
    clock: FakeClock
    gate: RecordingGate

    def submit(self, **changes: Any) -> tuple[str, str, dict[str, Any]]:
        payload = {**request_data(), **SELECTION, **changes}
        payload = {k: v for k, v in payload.items() if v is not None}
        ticket, run, _ = self.store.submit(parse_request(payload))
        return ticket, run, payload

    def deliver(self, ticket: str, run: str, payload: dict[str, Any]) -> Outcome:
        return process_ticket(
            ticket,
            run,
            payload,
            client=self.client,
            store=self.store,
            settings=self.settings,
            rng=random.Random(7),
            clock=self.clock,
            gate=self.gate,
        )

    def creates(self, payload: dict[str, Any]) -> int:
        return self.api.state.creates_for(
            payload["project_id"], payload["instance_id"], payload["task_name"]
        )


def rig_for(**sim: Any) -> Iterator[Rig]:
    settings = load_settings(
        {"max_attempts": 5, "backoff_base_s": 1.0, "backoff_max_s": 2.0}, env_file=None
    )
    clock = FakeClock()
    store = MemoryClaimStore(
        result_ttl_s=settings.delivery.result_ttl_s,
        watch_s=settings.delivery.visibility_timeout_s,
        clock=clock,
    )
    api = Forward(SimulatorConfig(seed=1, **sim))
    http = httpx.Client(base_url=BASE_URL, transport=httpx.MockTransport(api))
    try:
        yield Rig(settings, store, api, TaurusClient(http), clock, RecordingGate())
    finally:
        http.close()


@pytest.fixture
def rig() -> Iterator[Rig]:
    """A simulator whose tasks sync at once."""
    yield from rig_for()


@pytest.fixture
def slow_rig() -> Iterator[Rig]:
    """A simulator whose started tasks stay in Wait for a minute."""
    yield from rig_for(stage_wait_s=60.0)


def test_a_table_selection_is_configured_read_back_and_started(rig: Rig) -> None:
    """Three calls, each through the gate on its own API: the table check (creating), the
    configuration, the create call that starts the task and answers its job id."""
    message = rig.submit()
    assert rig.deliver(*message) == Outcome("finished", reason="created")
    assert rig.api.seen == [
        ("POST", "/table-config-check"),
        ("GET", "/configuration"),
        ("POST", "/"),
    ]
    assert rig.gate.apis == ["configure", "configuration", "create"]
    status = rig.store.get(message[0])
    assert status.state is TicketState.SUCCEEDED and status.job_id
    assert [a.call for a in status.history] == ["create"]
    assert rig.creates(message[2]) == 1
    fate = rig.api.state.lifecycle.fate(
        (message[2]["project_id"], message[2]["instance_id"], message[2]["task_name"])
    )
    assert fate is not None and fate.started


def test_a_database_selection_takes_the_database_check(rig: Rig) -> None:
    """Without table configs, the database check creates the task (no is_create_task)."""
    message = rig.submit(tables_configs=None)
    assert rig.deliver(*message) == Outcome("finished", reason="created")
    assert rig.api.seen[0] == ("POST", "/database-config-check")
    assert rig.creates(message[2]) == 1


def test_an_alter_error_deletes_the_task_and_fails_the_ticket(rig: Rig) -> None:
    """The read-back's last_error_of_alter_table: DELETE with the task's name, ticket failed
    with that error, nothing started."""
    rig.api.state.lifecycle.alter_error_rate = 1.0
    message = rig.submit()
    assert rig.deliver(*message) == Outcome("finished", reason="HTAP_SYNC.ALTER_TABLE")
    assert rig.api.seen == [
        ("POST", "/table-config-check"),
        ("GET", "/configuration"),
        ("DELETE", "/"),
    ]
    assert rig.gate.apis == ["configure", "configuration", "delete"]
    status = rig.store.get(message[0])
    assert status.state is TicketState.FAILED and status.error is not None
    assert status.error.error_code == "HTAP_SYNC.ALTER_TABLE"
    assert ALTER_ERROR in status.error.error_msg
    r = message[2]
    assert rig.api.state.task(r["project_id"], r["instance_id"], r["task_name"]) is None


def test_a_failed_check_creates_nothing_and_fails_the_ticket(rig: Rig) -> None:
    """A parameter the check refuses: one call, the ticket fails naming it, no task."""
    bad = [{"param_name": "max_full_sync_task_threads_num", "value": "999"}]
    message = rig.submit(db_configs=bad, tables_configs=None)
    assert rig.deliver(*message) == Outcome("finished", reason="HTAP_SYNC.CHECK_FAILED")
    assert rig.api.seen == [("POST", "/database-config-check")]
    status = rig.store.get(message[0])
    assert status.error is not None and "max_full_sync_task_threads_num" in status.error.error_msg
    assert rig.creates(message[2]) == 0


def test_a_lost_configuration_answer_goes_on_from_the_configured_task(slow_rig: Rig) -> None:
    """The check made the task but its answer was a 500: the next delivery lists, finds the
    task waiting, reads it back and starts it; the check is never sent twice."""
    rig = slow_rig
    rig.api.state.script(["created_then_500"])
    message = rig.submit()
    assert rig.deliver(*message).kind == "retry"
    assert rig.store.get(message[0]).state is TicketState.RETRYING
    rig.clock.advance(10)
    assert rig.deliver(*message) == Outcome("finished", reason="created")
    assert rig.api.seen == [
        ("POST", "/table-config-check"),
        ("GET", "/"),
        ("GET", "/configuration"),
        ("POST", "/"),
    ]
    assert rig.creates(message[2]) == 1


def test_a_lost_start_answer_is_found_started_without_a_second_check(slow_rig: Rig) -> None:
    """The start's answer was lost: the next delivery finds the task still in Wait, reads it
    back, starts again; the service says the name exists (it was started): success,
    reconciled. One configuration call, one task."""
    rig = slow_rig
    rig.api.state.script(["ok", "created_then_500"])
    message = rig.submit()
    assert rig.deliver(*message).kind == "retry"
    rig.clock.advance(10)
    assert rig.deliver(*message) == Outcome("finished", reason="reconciled")
    assert [call for call in rig.api.seen if call[1] == "/table-config-check"] == [
        ("POST", "/table-config-check")
    ]
    assert rig.api.seen[-2:] == [("POST", "/"), ("GET", "/")]
    status = rig.store.get(message[0])
    assert status.state is TicketState.SUCCEEDED and status.reconciled
    assert rig.creates(message[2]) == 1


def test_a_started_task_found_in_doubt_succeeds_with_one_look(rig: Rig) -> None:
    """The start's answer was lost, and the task already syncs: one list call ends it."""
    rig.api.state.script(["ok", "created_then_500"])
    message = rig.submit()
    assert rig.deliver(*message).kind == "retry"
    rig.clock.advance(10)
    seen = len(rig.api.seen)
    assert rig.deliver(*message) == Outcome("finished", reason="reconciled")
    assert rig.api.seen[seen:] == [("GET", "/")]


def test_a_failed_look_in_doubt_retries_the_ticket_and_fails_nothing(rig: Rig) -> None:
    """The start's answer was lost; the next delivery's list call fails too (a 500, or a
    timeout under load: seen failing tickets as HTAP_SYNC.INTERNAL in make test). The ticket
    retries, still in doubt, and the delivery after that looks first and finds the task."""
    rig.api.state.script(["ok", "created_then_500"])
    message = rig.submit()
    assert rig.deliver(*message).kind == "retry"
    rig.clock.advance(10)
    rig.api.lists.append(httpx.Response(500, json={"error_code": "DBS.108000"}))
    assert rig.deliver(*message).kind == "retry"
    assert rig.store.get(message[0]).state is TicketState.RETRYING
    rig.clock.advance(10)
    seen = len(rig.api.seen)
    assert rig.deliver(*message) == Outcome("finished", reason="reconciled")
    assert rig.api.seen[seen:] == [("GET", "/")]  # it looked first: the doubt was kept
    assert rig.creates(message[2]) == 1


def test_a_worker_that_died_before_its_check_configures_once_after_its_lease(rig: Rig) -> None:
    """Marked in doubt, then killed before the check went out: after the lease the next
    delivery looks (absent), configures, and starts."""
    ticket, run, payload = rig.submit()
    claim = rig.store.begin(ticket, run, lease_s=rig.settings.lease_s)
    assert not isinstance(claim, str)
    assert rig.store.start_attempt(claim, lease_s=rig.settings.lease_s)
    assert rig.deliver(ticket, run, payload) == Outcome("skipped", reason="busy")
    rig.clock.advance(rig.settings.lease_s + 1)
    assert rig.deliver(ticket, run, payload) == Outcome("finished", reason="created")
    assert [c[1] for c in rig.api.seen] == ["/", "/table-config-check", "/configuration", "/"]
    assert rig.creates(payload) == 1


def test_a_throttled_check_waits_and_costs_no_attempt(rig: Rig) -> None:
    """A 429 on the check created nothing: retried (no look needed), then created."""
    rig.api.state.script(["throttle:1"])
    message = rig.submit()
    assert rig.deliver(*message).kind == "retry"
    assert rig.store.get(message[0]).attempts == 0
    rig.clock.advance(10)
    assert rig.deliver(*message) == Outcome("finished", reason="created")
    assert [c[1] for c in rig.api.seen] == [
        "/table-config-check",
        "/table-config-check",
        "/configuration",
        "/",
    ]


def test_a_batch_sends_its_plain_tickets_together_and_a_configured_one_alone(rig: Rig) -> None:
    """On the batched path a configured ticket leaves the common path (marked, then alone
    through its two phases); the plain one beside it keeps its single create call."""
    plain = request_data(task_name="plain_001")
    ticket, run, _ = rig.store.submit(parse_request(plain))
    configured = rig.submit(task_name="cfg_001")
    d = Delivery(
        rig.client,
        rig.store,
        rig.settings,
        random.Random(7),
        OPEN_GATE,
        rig.clock,
        no_enroll,
        lambda: 0,
    )
    ends = process_batch([(ticket, run, plain), configured], d)
    assert ends == [Outcome("finished", reason="created")] * 2
    assert sorted(rig.api.seen) == sorted(
        [("POST", "/"), ("POST", "/table-config-check"), ("GET", "/configuration"), ("POST", "/")]
    )
    assert rig.store.get(configured[0]).attempts == rig.store.get(ticket).attempts == 1


def test_a_refused_start_fails_the_ticket_and_a_re_drive_starts_the_task(rig: Rig) -> None:
    """A 400 to the start: the ticket fails with it, still in doubt (the task exists, not
    started); submitted again, the ticket looks, finds it waiting and starts it: one check."""
    rig.api.starts.append(refused(400, "DBS.280001", "Invalid parameter."))
    ticket, run, payload = rig.submit()
    assert rig.deliver(ticket, run, payload) == Outcome("finished", reason="Rejected")
    assert rig.store.get(ticket).state is TicketState.FAILED
    ticket, run, _ = rig.store.submit(parse_request(payload))
    seen = len(rig.api.seen)
    assert rig.deliver(ticket, run, payload) == Outcome("finished", reason="created")
    assert [c[1] for c in rig.api.seen[seen:]] == ["/", "/configuration", "/"]
    assert rig.creates(payload) == 1


def test_a_check_that_made_no_task_is_not_read_back_as_a_failure(rig: Rig) -> None:
    """The table check's answer says nothing of the parameters; the one it refused made no
    task, so the read-back finds none: the ticket retries in doubt (it looks first next)."""
    bad = [{"param_name": "max_full_sync_task_threads_num", "value": "999"}]
    ticket, run, payload = rig.submit(db_configs=bad)
    assert rig.deliver(ticket, run, payload).kind == "retry"
    claim = rig.store.begin(ticket, run, lease_s=rig.settings.lease_s)
    assert not isinstance(claim, str) and claim.in_doubt
    assert rig.creates(payload) == 0
