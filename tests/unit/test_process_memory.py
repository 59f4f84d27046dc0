"""process_ticket on the in-memory ticket store and a scripted API: the worker's fast tier.

The same store contract as on Redis (tests/integration/test_lease_contract.py), so these
scenarios need no Redis; tests/integration/process/ runs the full set on Redis.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from htap_sync.common.models import ErrorPayload, TicketState, parse_request
from htap_sync.common.settings import Settings, load_settings
from htap_sync.common.tickets.claims_memory import MemoryClaimStore
from htap_sync.worker.api.client import TaurusClient
from htap_sync.worker.delivery.ticket import Outcome, process_ticket
from tests.conftest import request_data
from tests.scripted_api import FakeClock, ScriptedApi, created, refused

SEED = 1234
BASE_URL = "https://taurus.invalid"  # MockTransport answers; nothing is ever resolved


@dataclass
class Worker:
    """One test's worker: the memory store, a client on the scripted API, a seeded RNG."""

    settings: Settings
    store: MemoryClaimStore
    api: ScriptedApi
    client: TaurusClient
    clock: FakeClock

    def submit(self) -> tuple[str, str, dict[str, str]]:
        """A new ticket: ``(ticket, run, message payload)``."""
        payload = request_data()
        ticket, run, _ = self.store.submit(parse_request(payload))
        return ticket, run, payload

    def deliver(self, ticket: str, run: str, payload: dict[str, str]) -> Outcome:
        """One delivery of the ticket's message."""
        return process_ticket(
            ticket,
            run,
            payload,
            client=self.client,
            store=self.store,
            settings=self.settings,
            rng=random.Random(SEED),
            clock=self.clock,
        )


@pytest.fixture
def worker() -> Iterator[Worker]:
    """A worker whose store lives in this process: 3 attempts, backoff from 2 s."""
    settings = load_settings(
        {"max_attempts": 3, "backoff_base_s": 2.0, "backoff_max_s": 30.0}, env_file=None
    )
    clock = FakeClock()
    store = MemoryClaimStore(
        result_ttl_s=settings.delivery.result_ttl_s,
        watch_s=settings.delivery.visibility_timeout_s,
        clock=clock,
    )
    api = ScriptedApi()
    http = httpx.Client(base_url=BASE_URL, transport=httpx.MockTransport(api))
    try:
        yield Worker(settings, store, api, TaurusClient(http), clock)
    finally:
        http.close()


def test_a_created_task_succeeds_the_ticket_once(worker: Worker) -> None:
    """One POST succeeds the ticket with its job id; the same message again sends nothing."""
    message = worker.submit()
    worker.api.answer_creates(created("job-1"))
    assert worker.deliver(*message) == Outcome("finished", reason="created")
    status = worker.store.get(message[0])
    assert (status.state, status.job_id, status.attempts) == (TicketState.SUCCEEDED, "job-1", 1)
    assert worker.deliver(*message) == Outcome("skipped", reason="done")
    assert worker.api.methods == ["POST"]


def test_a_5xx_retries_in_doubt_after_a_jittered_backoff(worker: Worker) -> None:
    """A 503 leaves the ticket retrying with the error, due after full jitter, and in doubt."""
    ticket, run, payload = worker.submit()
    worker.api.answer_creates(refused(503, "DBS.108000", "Internal server error."))
    outcome = worker.deliver(ticket, run, payload)
    delay = random.Random(SEED).uniform(0.0, worker.settings.delivery.backoff_base_s)
    assert (outcome.kind, outcome.reason) == ("retry", "ServerError")
    assert outcome.delay_s == pytest.approx(delay)
    status = worker.store.get(ticket)
    assert (status.state, status.attempts) == (TicketState.RETRYING, 1)
    assert status.error is not None and status.error.error_code == "DBS.108000"
    assert worker.store.due_at(ticket, run) == pytest.approx(worker.clock.now + delay)
    claim = worker.store.begin(ticket, run, lease_s=worker.settings.lease_s)
    assert not isinstance(claim, str) and claim.in_doubt


def test_a_permanent_refusal_fails_at_once_and_proves_nothing_was_created(
    worker: Worker,
) -> None:
    """A 400 on a first attempt fails the ticket with the API's error, not in doubt."""
    ticket, run, payload = worker.submit()
    worker.api.answer_creates(refused(400, "DBS.280001", "Invalid parameter."))
    assert worker.deliver(ticket, run, payload) == Outcome("finished", reason="Rejected")
    status = worker.store.get(ticket)
    assert status.state is TicketState.FAILED
    assert status.error == ErrorPayload(
        http_status=400,
        error_code="DBS.280001",
        error_msg="Invalid parameter.",
        request_id="req-err",
    )
    assert [s.ticket for s in worker.store.failed()] == [ticket]
    # A re-drive knows the failed run created nothing: it posts without looking first.
    ticket, run, _ = worker.store.submit(parse_request(payload))
    worker.api.answer_creates(created("job-2"))
    assert worker.deliver(ticket, run, payload) == Outcome("finished", reason="created")
    assert worker.api.methods == ["POST", "POST"]


def test_after_a_5xx_a_listed_task_is_reconciled_without_a_second_post(worker: Worker) -> None:
    """The next delivery after an ambiguous answer lists first and finds the task created."""
    ticket, run, payload = worker.submit()
    worker.api.answer_creates(refused(503, "DBS.108000", "Internal server error."))
    assert worker.deliver(ticket, run, payload).kind == "retry"
    worker.api.show(payload)
    worker.clock.advance(worker.settings.delivery.backoff_max_s)
    assert worker.deliver(ticket, run, payload) == Outcome("finished", reason="reconciled")
    assert worker.api.methods == ["POST", "GET"]
    status = worker.store.get(ticket)
    assert (status.state, status.reconciled, status.job_id) == (TicketState.SUCCEEDED, True, None)
    assert [a.outcome for a in status.history] == ["error", "found"]


def test_a_lost_answer_is_reconciled_and_an_absent_task_posted_again(worker: Worker) -> None:
    """A read timeout is ambiguous: the next delivery lists, finds nothing, and posts again."""
    ticket, run, payload = worker.submit()
    worker.api.answer_creates(httpx.ReadTimeout, created("job-3"))
    assert worker.deliver(ticket, run, payload).kind == "retry"
    worker.clock.advance(worker.settings.delivery.backoff_max_s)
    assert worker.deliver(ticket, run, payload) == Outcome("finished", reason="created")
    assert worker.api.methods == ["POST", "GET", "POST"]
    assert worker.store.get(ticket).attempts == 2


def test_a_worker_that_died_mid_attempt_is_reconciled_by_the_next_delivery(
    worker: Worker,
) -> None:
    """A ticket left in doubt by a dead worker is looked up, once its lease ends, not posted."""
    ticket, run, payload = worker.submit()
    claim = worker.store.begin(ticket, run, lease_s=worker.settings.lease_s)
    assert not isinstance(claim, str)
    assert worker.store.start_attempt(claim, lease_s=worker.settings.lease_s)
    assert worker.deliver(ticket, run, payload) == Outcome("skipped", reason="busy")
    worker.clock.advance(worker.settings.lease_s + 1)
    worker.api.show(payload)
    assert worker.deliver(ticket, run, payload) == Outcome("finished", reason="reconciled")
    assert worker.api.methods == ["GET"]


def test_a_dead_holders_doubt_is_looked_at_once_its_call_has_ended_not_its_lease(
    worker: Worker,
) -> None:
    """A holder that marked doubt and stopped beating: the next delivery lists at once; absent,
    it waits until the holder's call has ended (``in_flight_s`` after the mark, well inside
    the lease), then lists again and creates."""
    ticket, run, payload = worker.submit()
    worker.store.node = "dead"
    claim = worker.store.begin(ticket, run, lease_s=worker.settings.lease_s)
    assert not isinstance(claim, str)
    assert worker.store.start_attempt(claim, lease_s=worker.settings.lease_s)
    worker.store.beat("dead", 10)
    worker.store.node = "taker"
    worker.store.beat("taker", 3600)
    worker.clock.advance(11)  # its beat has lapsed: the holder's process is dead
    outcome = worker.deliver(ticket, run, payload)
    in_flight_s = worker.settings.in_flight_s
    assert in_flight_s < worker.settings.lease_s
    assert (outcome.kind, outcome.reason) == ("waiting", "lease")
    assert outcome.delay_s == pytest.approx(in_flight_s - 11)
    worker.clock.advance(in_flight_s - 11)
    worker.api.answer_creates(created("job-4"))
    assert worker.deliver(ticket, run, payload) == Outcome("finished", reason="created")
    assert worker.api.methods == ["GET", "GET", "POST"]
