"""process_ticket through a real gate (bucket and breaker in memory) on the memory store: the
start passes the gate and marks in one step, a wait costs no attempt, a success tells the
breaker. The fast tier of what tests/integration/test_round_trips.py runs on Redis."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from htap_sync.common.errors import ServerError
from htap_sync.common.limits.breaker import MemoryBreakerStore
from htap_sync.common.limits.bucket import MemoryBucketStore
from htap_sync.common.limits.gate import Gate
from htap_sync.common.models import TicketState, parse_request
from htap_sync.common.settings import Settings, load_settings
from htap_sync.common.tickets.claims_memory import MemoryClaimStore
from htap_sync.worker.api.client import TaurusClient
from htap_sync.worker.delivery.ticket import Outcome, process_ticket
from tests.conftest import request_data
from tests.scripted_api import ScriptedApi, created

BASE_URL = "https://taurus.invalid"  # MockTransport answers; nothing is ever resolved


class Clock:
    """One clock for the store, the bucket and the breaker; it moves when the gate sleeps."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@dataclass
class Worker:
    """The memory store, a gate in memory, a client on the scripted API."""

    settings: Settings
    store: MemoryClaimStore
    gate: Gate
    api: ScriptedApi
    client: TaurusClient
    clock: Clock

    def deliver(self, name: str) -> tuple[str, Outcome]:
        """Submit a ticket and deliver its message once."""
        payload = request_data(task_name=name)
        ticket, run, _ = self.store.submit(parse_request(payload))
        outcome = process_ticket(
            ticket,
            run,
            payload,
            client=self.client,
            store=self.store,
            settings=self.settings,
            rng=random.Random(3),
            gate=self.gate,
            clock=self.clock,
        )
        return ticket, outcome


def make_worker(**overrides: Any) -> Iterator[Worker]:
    """A worker whose gate allows ``rate_limit_per_s`` calls a second, one at once."""
    settings = load_settings(
        {
            "endpoint": BASE_URL,
            "rate_burst": 1,
            "breaker_threshold": 2,
            "breaker_cooldown_s": 30,
            "breaker_probes": 1,
            **overrides,
        },
        env_file=None,
    )
    clock = Clock()
    store = MemoryClaimStore(result_ttl_s=600, watch_s=60, clock=clock)
    gate = Gate(MemoryBucketStore(clock), MemoryBreakerStore(clock), settings, sleep=clock.sleep)
    api = ScriptedApi()
    http = httpx.Client(base_url=BASE_URL, transport=httpx.MockTransport(api))
    try:
        yield Worker(settings, store, gate, api, TaurusClient(http), clock)
    finally:
        http.close()


@pytest.fixture
def slow() -> Iterator[Worker]:
    """A token every 100 s."""
    yield from make_worker(rate_limit_per_s=0.01)


@pytest.fixture
def paced() -> Iterator[Worker]:
    """Two tokens a second."""
    yield from make_worker(rate_limit_per_s=2)


def test_a_wait_for_the_rate_costs_no_attempt_and_sends_nothing(slow: Worker) -> None:
    """The bucket's one token goes to the first ticket; the second goes back, queued, for the
    100 s until the next token, neither counted nor in doubt."""
    slow.api.answer_creates(created("job-1"))
    assert slow.deliver("first")[1] == Outcome("finished", reason="created")
    ticket, outcome = slow.deliver("second")
    assert (outcome.kind, outcome.reason) == ("waiting", "rate")
    assert outcome.delay_s == pytest.approx(100)
    status = slow.store.get(ticket)
    assert (status.state, status.attempts) == (TicketState.QUEUED, 0)
    assert slow.api.methods == ["POST"]


def test_an_open_breaker_holds_the_ticket_at_no_attempt(paced: Worker) -> None:
    """Server failures open the breaker: the next ticket waits out its cooldown, unsent."""
    for _ in range(2):
        paced.gate.after_call("p", "create", ServerError("down", http_status=503))
    ticket, outcome = paced.deliver("held")
    assert outcome == Outcome("waiting", delay_s=30.0, reason="breaker")
    assert paced.store.get(ticket).attempts == 0
    assert paced.api.methods == []


def test_a_reserved_token_is_slept_for_after_the_mark(paced: Worker) -> None:
    """The second ticket reserves the token due in half a second: sleeps, then sends."""
    paced.api.answer_creates(created("job-1"), created("job-2"))
    assert paced.deliver("first")[1].reason == "created"
    assert paced.deliver("second")[1].reason == "created"
    assert paced.clock.slept == [pytest.approx(0.5)]
    assert paced.api.methods == ["POST", "POST"]


def test_a_probe_that_succeeds_closes_the_breaker(paced: Worker) -> None:
    """After the cooldown one probe goes out; its success, recorded by the finish, closes the
    breaker; a success on a closed breaker keeps it as it is."""
    for _ in range(2):
        paced.gate.after_call("p", "create", ServerError("down", http_status=503))
    paced.clock.now += 31
    paced.api.answer_creates(created("job-1"), created("job-2"))
    assert paced.deliver("probe")[1].reason == "created"
    breaker = paced.gate.breaker()
    assert breaker is not None and (breaker.state, breaker.opened) == ("closed", 1)
    assert paced.deliver("after")[1].reason == "created"
    assert paced.gate.breaker() == breaker
