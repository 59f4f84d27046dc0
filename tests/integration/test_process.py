"""process_ticket and the ticket store on a real Redis: claims, leases, reconciliation, retries."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
import redis

from htap_sync.common.connections import make_redis, make_store
from htap_sync.common.lease import Claim
from htap_sync.common.lease_redis import RedisLeaseStore
from htap_sync.common.models import ErrorPayload, TicketState, TicketStatus, parse_request
from htap_sync.common.settings import Settings, load_settings
from htap_sync.common.store import Submitted
from htap_sync.common.tickets import ticket_id
from htap_sync.simulator import SimulatorServer
from htap_sync.worker.aio import EventLoop, LoopTransport
from htap_sync.worker.client import TaurusClient
from htap_sync.worker.process import Outcome, process_ticket
from tests.conftest import request_data
from tests.integration.harness import TOKEN
from tests.scripted_api import Answer, FakeClock, ScriptedApi, created, refused

SEED = 1234
BASE_URL = "https://taurus.invalid"  # MockTransport answers; nothing is ever resolved
RESULT_TTL_S = 4321  # distinctive, so a TTL check cannot pass by accident
NAME_EXISTS = "DBS.280005"  # the simulator's 409 for a task name that already exists


@dataclass(frozen=True)
class Message:
    """What the broker would carry: ticket, run and the request as JSON-ready data."""

    ticket: str
    run: str
    payload: Any


@dataclass
class Rig:
    """A real ticket store, a client on the scripted API, a seeded RNG: one test's worker."""

    settings: Settings
    redis: redis.Redis
    store: RedisLeaseStore
    api: ScriptedApi
    client: TaurusClient

    def __post_init__(self) -> None:
        self.rng = random.Random(SEED)
        self.clock: Callable[[], float] = time.time

    def use_clock(self, clock: FakeClock) -> None:
        """Swap in a store on the same keys whose time is ``clock`` (before any submit)."""
        self.clock = clock
        self.store = RedisLeaseStore(
            self.redis,
            key_prefix=self.settings.key_prefix,
            result_ttl_s=self.settings.result_ttl_s,
            clock=clock,
        )

    def submit(self, **changes: str) -> Message:
        """Submit a valid request (with some fields changed) as a new ticket."""
        payload = request_data(**changes)
        ticket, run, what = self.store.submit(parse_request(payload))
        assert what is Submitted.QUEUED
        return Message(ticket, run, payload)

    def deliver(
        self, message: Message, client: TaurusClient | None = None, replicas: int = 0
    ) -> Outcome:
        """One delivery of ``message`` to the worker logic."""
        return process_ticket(
            message.ticket,
            message.run,
            message.payload,
            client=client or self.client,
            store=self.store,
            settings=self.settings,
            rng=self.rng,
            clock=self.clock,
            replicas=lambda: replicas,
        )

    def status(self, message: Message) -> TicketStatus:
        """The ticket's status as a caller polls it."""
        return self.store.get(message.ticket)

    def in_doubt(self, message: Message) -> bool:
        """The ticket's raw ``in_doubt`` flag."""
        return self.redis.hget(self.store.key(message.ticket), "in_doubt") == "1"

    def ttl_s(self, message: Message) -> int:
        """The ticket key's TTL in seconds (-1: never expires)."""
        return int(self.redis.ttl(self.store.key(message.ticket)))


def first_jitter_s(settings: Settings) -> float:
    """The delay after a first failed attempt without Retry-After: full jitter from SEED."""
    return random.Random(SEED).uniform(0.0, settings.backoff_base_s)


def assert_result_ttl(rig: Rig, message: Message) -> None:
    """A finished ticket expires after result_ttl_s."""
    assert RESULT_TTL_S - 2 <= rig.ttl_s(message) <= RESULT_TTL_S


@pytest.fixture
def settings(redis_url: str) -> Settings:
    """This module's settings: its own key prefix, 3 attempts, lease 15 s; no simulator needed."""
    return load_settings(
        {
            "redis_url": redis_url,
            "key_prefix": f"test-proc-{uuid.uuid4().hex[:12]}",
            "max_attempts": 3,
            "request_timeout_s": 5,
            "redis_wait_timeout_s": 0.05,
            "visibility_timeout_s": 60,
            "backoff_base_s": 2.0,
            "backoff_max_s": 30.0,
            "result_ttl_s": RESULT_TTL_S,
        },
        env_file=None,
    )


@pytest.fixture(params=["single", "batched"])
def rig(settings: Settings, request: pytest.FixtureRequest) -> Iterator[Rig]:
    """A worker's collaborators on the real Redis and a scripted API; its calls go as the
    single task sends them (a sync transport) or as the batch task does (through the
    event-loop bridge of ``worker.aio``)."""
    api = ScriptedApi()
    client = make_redis(settings)
    loop = EventLoop() if request.param == "batched" else None
    transport: httpx.BaseTransport = httpx.MockTransport(api)
    if loop is not None:
        transport = LoopTransport(httpx.MockTransport(api), loop)
    http = httpx.Client(base_url=BASE_URL, transport=transport)
    try:
        yield Rig(settings, client, make_store(settings, client), api, TaurusClient(http))
    finally:
        http.close()
        client.close()
        if loop is not None:
            loop.close()


@pytest.fixture
def clock() -> FakeClock:
    """A clock the test moves by hand."""
    return FakeClock()


# -- success, stale and missing messages, leases -------------------------------------------------


def test_success_records_the_job_and_a_redelivery_sends_nothing(rig: Rig) -> None:
    """One POST succeeds the ticket with its job id and TTL; the same message again is skipped."""
    msg = rig.submit()
    rig.api.answer_creates(created("job-1"))

    assert rig.deliver(msg) == Outcome("finished", reason="created")
    status = rig.status(msg)
    assert status.state is TicketState.SUCCEEDED
    assert (status.job_id, status.attempts, status.reconciled, status.error) == (
        "job-1",
        1,
        False,
        None,
    )
    assert not rig.in_doubt(msg)
    assert_result_ttl(rig, msg)
    assert rig.api.methods == ["POST"]

    assert rig.deliver(msg) == Outcome("skipped", reason="done")
    assert rig.api.methods == ["POST"]
    assert rig.status(msg).attempts == 1


def test_a_message_of_another_run_is_skipped_and_sends_nothing(rig: Rig) -> None:
    """A message whose run is not the ticket's current run does nothing at all."""
    msg = rig.submit()
    assert rig.deliver(replace(msg, run=uuid.uuid4().hex)) == Outcome("skipped", reason="stale")
    assert rig.api.methods == []
    status = rig.status(msg)
    assert (status.state, status.attempts) == (TicketState.QUEUED, 0)


def test_a_message_for_a_missing_ticket_is_skipped_and_creates_no_key(rig: Rig) -> None:
    """A message naming a ticket that does not exist sends nothing and writes nothing."""
    payload = request_data(task_name="never_submitted")
    ticket = ticket_id(payload["project_id"], payload["instance_id"], payload["task_name"])
    msg = Message(ticket, uuid.uuid4().hex, payload)
    assert rig.deliver(msg) == Outcome("skipped", reason="missing")
    assert rig.api.methods == []
    assert rig.redis.exists(rig.store.key(ticket)) == 0


def test_a_live_lease_turns_deliveries_away_until_it_expires(rig: Rig, clock: FakeClock) -> None:
    """While a holder's lease runs, begin() is busy; after it expires the next delivery takes it."""
    rig.use_clock(clock)
    msg = rig.submit()
    lease_s = rig.settings.lease_s
    assert isinstance(rig.store.begin(msg.ticket, msg.run, lease_s=lease_s), Claim)

    clock.advance(lease_s - 0.5)
    assert rig.store.begin(msg.ticket, msg.run, lease_s=lease_s) == "busy"
    assert rig.deliver(msg) == Outcome("skipped", reason="busy")
    assert rig.api.methods == []

    clock.advance(1.0)
    rig.api.answer_creates(created("job-3"))
    assert rig.deliver(msg) == Outcome("finished", reason="created")
    # The holder never started an attempt, so nothing was in doubt: no list call.
    assert rig.api.methods == ["POST"]
    assert (rig.status(msg).state, rig.status(msg).attempts) == (TicketState.SUCCEEDED, 1)


# -- ambiguous outcomes: reconcile before posting again ------------------------------------------


def fail_once_with_503(rig: Rig) -> Message:
    """Submit a ticket whose first create call is answered 503."""
    msg = rig.submit()
    rig.api.answer_creates(
        refused(503, "DBS.108000", "Internal server error.", request_id="req-503")
    )
    assert rig.deliver(msg).kind == "retry"
    return msg


def test_a_5xx_leaves_the_ticket_retrying_in_doubt_with_the_error(rig: Rig) -> None:
    """A 5xx on create is a retry with full jitter; the ticket keeps the payload and its doubt."""
    msg = rig.submit()
    rig.api.answer_creates(
        refused(503, "DBS.108000", "Internal server error.", request_id="req-503")
    )

    outcome = rig.deliver(msg)
    assert outcome == Outcome("retry", delay_s=first_jitter_s(rig.settings), reason="ServerError")
    status = rig.status(msg)
    assert status.state is TicketState.RETRYING
    assert status.error == ErrorPayload(
        http_status=503,
        error_code="DBS.108000",
        error_msg="Internal server error.",
        request_id="req-503",
    )
    assert (status.attempts, status.job_id) == (1, None)
    assert rig.in_doubt(msg)
    assert rig.ttl_s(msg) == -1  # in flight: never expires
    assert rig.api.methods == ["POST"]


def test_after_a_5xx_a_listed_task_is_reconciled_without_a_second_post(rig: Rig) -> None:
    """When the list call shows the task with the same databases, the ticket succeeds unsent."""
    msg = fail_once_with_503(rig)
    rig.api.show(msg.payload)

    assert rig.deliver(msg) == Outcome("finished", reason="reconciled")
    status = rig.status(msg)
    assert status.state is TicketState.SUCCEEDED
    assert (status.job_id, status.reconciled, status.attempts, status.error) == (
        None,
        True,
        1,
        None,
    )
    assert not rig.in_doubt(msg)
    assert_result_ttl(rig, msg)
    assert rig.api.methods == ["POST", "GET"]


def test_after_a_5xx_an_unlisted_task_is_posted_again(rig: Rig) -> None:
    """When the list call does not show the task, the next delivery lists, then POSTs once."""
    msg = fail_once_with_503(rig)
    rig.api.answer_creates(created("job-4b"))

    assert rig.deliver(msg) == Outcome("finished", reason="created")
    assert rig.api.methods == ["POST", "GET", "POST"]
    assert dict(rig.api.seen[1].url.params) == {"limit": "100", "offset": "0"}
    status = rig.status(msg)
    assert (status.state, status.job_id, status.reconciled, status.attempts) == (
        TicketState.SUCCEEDED,
        "job-4b",
        False,
        2,
    )
    assert not rig.in_doubt(msg)


def test_after_a_5xx_the_name_listed_with_other_databases_fails_as_taken(rig: Rig) -> None:
    """A listed task of that name copying other databases fails the ticket, with no POST."""
    msg = fail_once_with_503(rig)
    rig.api.show(msg.payload, source_database="other_db")

    assert rig.deliver(msg) == Outcome("finished", reason="name taken")
    status = rig.status(msg)
    assert status.state is TicketState.FAILED
    assert status.error is not None
    assert status.error.error_code == "HTAP_SYNC.NAME_TAKEN"
    assert status.job_id is None
    assert rig.api.methods == ["POST", "GET"]


@pytest.mark.parametrize(
    ("listed", "reason", "methods"),
    [(True, "reconciled", ["POST", "GET"]), (False, "created", ["POST", "GET", "POST"])],
)
def test_a_read_timeout_is_reconciled_before_posting_again(
    rig: Rig, listed: bool, reason: str, methods: list[str]
) -> None:
    """A create with no answer after sending is in doubt: the next delivery lists first."""
    msg = rig.submit()
    rig.api.answer_creates(httpx.ReadTimeout)

    assert rig.deliver(msg) == Outcome(
        "retry", delay_s=first_jitter_s(rig.settings), reason="Ambiguous"
    )
    status = rig.status(msg)
    assert status.state is TicketState.RETRYING
    assert status.error is not None
    assert status.error.http_status is None
    assert status.error.error_msg.startswith("no answer after sending: ReadTimeout")
    assert rig.in_doubt(msg)

    if listed:
        rig.api.show(msg.payload)
    else:
        rig.api.answer_creates(created("job-5"))
    assert rig.deliver(msg) == Outcome("finished", reason=reason)
    assert rig.api.methods == methods
    assert rig.status(msg).state is TicketState.SUCCEEDED


class LoseFirstCreateAnswer(httpx.BaseTransport):
    """Forwards to the server, but loses the answer of the first create call after it ran."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self.lost = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        if request.method == "POST" and not self.lost:
            response.close()
            self.lost += 1
            raise httpx.ReadTimeout("answer lost after the server acted", request=request)
        return response

    def close(self) -> None:
        self._inner.close()


def test_a_lost_answer_from_the_simulator_is_reconciled_and_created_once(
    rig: Rig, simulator: SimulatorServer
) -> None:
    """Against the real simulator, a create whose answer was lost is found by the list call."""
    msg = rig.submit()
    transport = LoseFirstCreateAnswer()
    with httpx.Client(
        base_url=simulator.url, headers={"X-Auth-Token": TOKEN}, transport=transport
    ) as http:
        client = TaurusClient(http)
        assert rig.deliver(msg, client).kind == "retry"
        assert rig.in_doubt(msg)
        assert rig.deliver(msg, client) == Outcome("finished", reason="reconciled")

    assert transport.lost == 1
    p = msg.payload
    assert simulator.state.creates_for(p["project_id"], p["instance_id"], p["task_name"]) == 1
    assert simulator.state.create_calls == 1
    status = rig.status(msg)
    assert (status.state, status.reconciled, status.attempts) == (TicketState.SUCCEEDED, True, 1)


@pytest.mark.parametrize(
    ("listed", "reason", "methods", "attempts"),
    [(True, "reconciled", ["GET"], 1), (False, "created", ["GET", "POST"], 2)],
)
def test_a_worker_that_died_mid_attempt_is_reconciled_first(
    rig: Rig, clock: FakeClock, listed: bool, reason: str, methods: list[str], attempts: int
) -> None:
    """A delivery taking over an expired lease after start_attempt lists before it POSTs."""
    rig.use_clock(clock)
    msg = rig.submit()
    lease_s = rig.settings.lease_s
    claim = rig.store.begin(msg.ticket, msg.run, lease_s=lease_s)
    assert isinstance(claim, Claim)
    assert rig.store.start_attempt(claim, lease_s=lease_s)
    # ...and the worker dies here, its POST possibly processed by the API.
    assert rig.deliver(msg) == Outcome("skipped", reason="busy")

    clock.advance(lease_s + 1)
    if listed:
        rig.api.show(msg.payload)
    else:
        rig.api.answer_creates(created("job-6"))
    assert rig.deliver(msg) == Outcome("finished", reason=reason)
    assert rig.api.methods == methods
    status = rig.status(msg)
    assert (status.state, status.attempts, status.reconciled) == (
        TicketState.SUCCEEDED,
        attempts,
        listed,
    )


def test_name_exists_after_an_ambiguous_attempt_leads_to_reconciliation(rig: Rig) -> None:
    """A 409 name-exists answer while in doubt is our own task: list, retry, never fail."""
    msg = fail_once_with_503(rig)
    # The list call lags behind the create: it does not show the task yet, the POST says 409.
    rig.api.answer_creates(refused(409, NAME_EXISTS, "Task name already exists."))

    outcome = rig.deliver(msg)
    assert (outcome.kind, outcome.reason) == ("retry", "Rejected")
    status = rig.status(msg)
    assert status.state is TicketState.RETRYING
    assert status.error is not None
    assert (status.error.http_status, status.error.error_code) == (409, NAME_EXISTS)
    assert status.attempts == 2
    assert rig.in_doubt(msg)

    # The refusal was checked with the list call at once (GET after the second POST).
    assert rig.api.methods == ["POST", "GET", "POST", "GET"]

    rig.api.show(msg.payload)
    assert rig.deliver(msg) == Outcome("finished", reason="reconciled")
    assert rig.api.methods == ["POST", "GET", "POST", "GET", "GET"]
    status = rig.status(msg)
    assert (status.state, status.reconciled, status.job_id) == (TicketState.SUCCEEDED, True, None)
    assert status.job_id_reason is not None and status.found is not None
    assert status.found["task_name"] == msg.payload["task_name"]


@pytest.mark.parametrize("http_status", [400, 409])
def test_name_exists_with_an_in_doubt_mark_lost_still_reconciles(
    rig: Rig, http_status: int
) -> None:
    """After an earlier attempt (its doubt lost, e.g. by a failover), 'name exists' is ours."""
    msg = rig.submit()
    claim = rig.store.begin(msg.ticket, msg.run, lease_s=rig.settings.lease_s)
    assert isinstance(claim, Claim)
    assert rig.store.start_attempt(claim, lease_s=rig.settings.lease_s)
    rig.store.retrying(claim, ErrorPayload(error_msg="lost"), in_doubt=False, due_at=0)
    rig.api.answer_creates(refused(http_status, NAME_EXISTS, "Task name already exists."))
    outcome = rig.deliver(msg)
    assert (outcome.kind, rig.api.methods) == ("retry", ["POST", "GET"])
    assert rig.in_doubt(msg)
    rig.api.show(msg.payload)
    assert rig.deliver(msg) == Outcome("finished", reason="reconciled")


def test_name_exists_on_a_first_attempt_fails_unless_listed(rig: Rig) -> None:
    """On a first attempt, 'name exists' is checked once by list: absent, someone else's: fail."""
    msg = rig.submit()
    rig.api.answer_creates(refused(409, NAME_EXISTS, "Task name already exists."))
    assert rig.deliver(msg) == Outcome("finished", reason="Rejected")
    status = rig.status(msg)
    assert status.state is TicketState.FAILED
    assert status.error is not None
    assert status.error.error_code == NAME_EXISTS
    assert rig.api.methods == ["POST", "GET"]


def test_name_exists_on_a_first_attempt_with_our_task_listed_succeeds(rig: Rig) -> None:
    """A task of that name and the same databases is the one asked for: reconciled, no job id."""
    msg = rig.submit()
    rig.api.show(msg.payload)
    rig.api.answer_creates(refused(400, NAME_EXISTS, "The task name already exists."))
    assert rig.deliver(msg) == Outcome("finished", reason="reconciled")
    assert rig.api.methods == ["POST", "GET"]
    assert rig.status(msg).reconciled


# -- answers that prove nothing was created ------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "reason", "error", "retry_after_s"),
    [
        pytest.param(
            lambda: refused(429, "APIGW.0308", "Too many requests", **{"Retry-After": "7"}),
            "Throttled",
            ErrorPayload(
                http_status=429,
                error_code="APIGW.0308",
                error_msg="Too many requests",
                request_id="req-err",
            ),
            7.0,
            id="429-retry-after",
        ),
        pytest.param(
            lambda: refused(429, "APIGW.0308", "Too many requests", **{"Retry-After": "3600"}),
            "Throttled",
            ErrorPayload(
                http_status=429,
                error_code="APIGW.0308",
                error_msg="Too many requests",
                request_id="req-err",
            ),
            30.0,  # capped at backoff_max_s
            id="429-retry-after-capped",
        ),
        pytest.param(
            lambda: refused(409, "DBS.200011", "Another operation is in progress."),
            "InProgress",
            ErrorPayload(
                http_status=409,
                error_code="DBS.200011",
                error_msg="Another operation is in progress.",
                request_id="req-err",
            ),
            None,
            id="409-in-progress",
        ),
        pytest.param(
            lambda: httpx.ConnectError,
            "TransportError",
            ErrorPayload(
                error_code=None,
                error_msg="not sent: ConnectError: scripted transport failure",
            ),
            None,
            id="connection-refused",
        ),
    ],
)
def test_retryable_answers_retry_without_doubt_and_post_again_unlisted(
    rig: Rig,
    answer: Callable[[], Answer],
    reason: str,
    error: ErrorPayload,
    retry_after_s: float | None,
) -> None:
    """429, 409-in-progress and refused connections retry not in doubt, honouring Retry-After."""
    msg = rig.submit()
    rig.api.answer_creates(answer())

    delay_s = first_jitter_s(rig.settings) if retry_after_s is None else retry_after_s
    assert rig.deliver(msg) == Outcome("retry", delay_s=delay_s, reason=reason)
    spent = 0 if reason == "Throttled" else 1  # waiting out throttling costs no attempt
    status = rig.status(msg)
    assert (status.state, status.error, status.attempts) == (TicketState.RETRYING, error, spent)
    assert not rig.in_doubt(msg)
    # The wait is in the durable delayed set, due after the delay.
    due = rig.redis.zscore(rig.store.delayed_key, f"{msg.ticket}:{msg.run}")
    assert due is not None and due == pytest.approx(time.time() + delay_s, abs=5)

    rig.api.answer_creates(created("job-7"))
    assert rig.deliver(msg) == Outcome("finished", reason="created")
    assert rig.api.methods == ["POST", "POST"]  # no list call in between
    assert (rig.status(msg).job_id, rig.status(msg).attempts) == ("job-7", spent + 1)


def test_a_permanent_refusal_fails_at_once_and_a_redrive_posts_unlisted(rig: Rig) -> None:
    """A 400 fails with its payload and no doubt; a re-drive posts again without a list call."""
    msg = rig.submit()
    rig.api.answer_creates(refused(400, "DBS.200022", "Instance not found.", request_id="req-400"))

    assert rig.deliver(msg) == Outcome("finished", reason="Rejected")
    status = rig.status(msg)
    assert status.state is TicketState.FAILED
    assert status.error == ErrorPayload(
        http_status=400,
        error_code="DBS.200022",
        error_msg="Instance not found.",
        request_id="req-400",
    )
    assert (status.attempts, status.job_id) == (1, None)
    assert not rig.in_doubt(msg)
    assert_result_ttl(rig, msg)

    ticket, run, what = rig.store.submit(parse_request(msg.payload))
    assert (ticket, what) == (msg.ticket, Submitted.REDRIVEN)
    assert run != msg.run
    status = rig.status(msg)
    assert (status.state, status.attempts, status.error) == (TicketState.QUEUED, 0, None)
    assert rig.ttl_s(msg) == -1
    # The failed run's leftovers can neither act nor write.
    assert rig.deliver(msg) == Outcome("skipped", reason="stale")
    assert not rig.store.fail(Claim(msg.ticket, msg.run), ErrorPayload(error_msg="late"))

    rig.api.answer_creates(created("job-8"))
    assert rig.deliver(replace(msg, run=run)) == Outcome("finished", reason="created")
    assert rig.api.methods == ["POST", "POST"]
    assert (rig.status(msg).state, rig.status(msg).attempts) == (TicketState.SUCCEEDED, 1)


# -- the attempt budget --------------------------------------------------------------------------


def test_5xx_every_time_fails_after_max_attempts_and_one_last_look(rig: Rig) -> None:
    """With 503 on every create: 3 POSTs, each retry listing first, then failure without a POST."""
    msg = rig.submit()
    rig.api.answer_creates(*(refused(503, "DBS.108000", "Internal server error.") for _ in "123"))

    outcomes = [rig.deliver(msg) for _ in range(4)]
    assert [o.kind for o in outcomes] == ["retry", "retry", "retry", "finished"]
    assert outcomes[-1].reason == "budget exhausted"
    assert rig.api.methods == ["POST", "GET", "POST", "GET", "POST", "GET"]
    status = rig.status(msg)
    assert status.state is TicketState.FAILED
    assert status.error is not None
    assert status.error.error_code == "HTAP_SYNC.EXHAUSTED"
    assert status.attempts == 3
    assert [(a.call, a.outcome) for a in status.history] == [("create", "error")] * 3 + [
        ("list", "absent")
    ]
    assert_result_ttl(rig, msg)
    # The last look proved the task absent: a re-drive need not look again.
    assert not rig.in_doubt(msg)

    assert rig.deliver(msg) == Outcome("skipped", reason="done")
    assert len(rig.api.seen) == 6


def test_past_the_deadline_a_ticket_in_doubt_looks_once_more_then_fails(
    rig: Rig, clock: FakeClock
) -> None:
    """Past the deadline, a ticket in doubt is listed (reconciled if found), never posted."""
    rig.use_clock(clock)
    found, absent = rig.submit(task_name="found_late"), rig.submit(task_name="absent_late")
    rig.api.answer_creates(*(refused(502, "DBS.108000", "Bad gateway") for _ in "12"))
    assert rig.deliver(found).kind == "retry"
    assert rig.deliver(absent).kind == "retry"
    clock.advance(rig.settings.deadline_s + 1)
    rig.api.show(found.payload)
    assert rig.deliver(found) == Outcome("finished", reason="reconciled")
    assert rig.deliver(absent) == Outcome("finished", reason="budget exhausted")
    assert rig.api.methods == ["POST", "POST", "GET", "GET"]
    status = rig.status(absent)
    assert status.error is not None and status.error.error_code == "HTAP_SYNC.EXHAUSTED"


def test_redriving_a_ticket_that_failed_in_doubt_lists_first(rig: Rig) -> None:
    """A ticket that failed while its task may exist is looked up before any new POST."""
    msg = rig.submit()
    rig.api.answer_creates(refused(503, "DBS.108000", "Internal server error."))
    # The list call is refused for good (say, the IAM policy lacks the list action).
    rig.api.answer_lists(refused(403, "DBS.200001", "No permission."))
    assert rig.deliver(msg).kind == "retry"
    assert rig.deliver(msg) == Outcome("finished", reason="Rejected")
    assert rig.status(msg).state is TicketState.FAILED
    assert rig.in_doubt(msg)

    _, run, what = rig.store.submit(parse_request(msg.payload))
    assert what is Submitted.REDRIVEN
    rig.api.show(msg.payload)  # the 503 did create it after all
    assert rig.deliver(replace(msg, run=run)) == Outcome("finished", reason="reconciled")
    assert rig.api.methods == ["POST", "GET", "GET"]
    assert rig.status(msg).reconciled


def test_throttling_costs_no_attempt_and_ends_only_at_the_deadline(
    rig: Rig, clock: FakeClock
) -> None:
    """429s are waited out without spending attempts or listing; the deadline ends them."""
    rig.use_clock(clock)
    msg = rig.submit()
    throttled = [refused(429, "APIGW.0308", "Too many requests") for _ in range(5)]
    rig.api.answer_creates(*throttled)

    outcomes = [rig.deliver(msg) for _ in range(4)]
    assert [o.kind for o in outcomes] == ["retry"] * 4  # more than max_attempts (3)
    assert rig.status(msg).attempts == 0
    clock.advance(rig.settings.deadline_s + 1)
    assert rig.deliver(msg) == Outcome("finished", reason="budget exhausted")
    assert rig.api.methods == ["POST"] * 5
    status = rig.status(msg)
    assert status.state is TicketState.FAILED
    assert status.error is not None
    assert (status.error.http_status, status.error.error_code) == (429, "APIGW.0308")
    # Every answer proved nothing was created, so a re-drive posts without looking first.
    assert not rig.in_doubt(msg)
    _, run, what = rig.store.submit(parse_request(msg.payload))
    assert what is Submitted.REDRIVEN
    rig.api.answer_creates(created("job-9"))
    assert rig.deliver(replace(msg, run=run)) == Outcome("finished", reason="created")
    assert rig.api.methods == ["POST"] * 6


# -- untrusted messages, late writers ------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "reason", "error_msg"),
    [
        pytest.param(
            request_data(task_name="x"),
            "invalid message",
            "task_name: 3 to 128 characters of A-Z, a-z, 0-9 and _",
            id="rule-broken",
        ),
        pytest.param(
            {**request_data(), "job_id": "forged"},
            "invalid message",
            "job_id: unknown field",
            id="unknown-field",
        ),
        pytest.param(
            "not an object", "invalid message", "request: must be an object", id="not-an-object"
        ),
        pytest.param(
            request_data(task_name="someone_elses_task"),
            "ticket mismatch",
            "message names another ticket",
            id="another-ticket",
        ),
    ],
)
def test_a_tampered_message_fails_the_ticket_as_invalid_and_sends_nothing(
    rig: Rig, payload: Any, reason: str, error_msg: str
) -> None:
    """A message breaking the rules or naming another ticket fails it with HTAP_SYNC.INVALID."""
    msg = rig.submit()
    other = rig.submit(task_name="someone_elses_task")

    assert rig.deliver(replace(msg, payload=payload)) == Outcome("finished", reason=reason)
    status = rig.status(msg)
    assert status.state is TicketState.FAILED
    assert status.error == ErrorPayload(error_code="HTAP_SYNC.INVALID", error_msg=error_msg)
    assert status.attempts == 0
    assert rig.api.methods == []
    assert rig.status(other).state is TicketState.QUEUED


@pytest.mark.parametrize("finish", ["succeed", "fail"])
def test_late_writers_cannot_undo_a_result(rig: Rig, finish: str) -> None:
    """After a ticket finished, every write of the same run is refused and the result stands."""
    msg = rig.submit()
    lease_s = rig.settings.lease_s
    claim = rig.store.begin(msg.ticket, msg.run, lease_s=lease_s)
    assert isinstance(claim, Claim)
    assert rig.store.start_attempt(claim, lease_s=lease_s)
    error = ErrorPayload(http_status=400, error_code="DBS.280001", error_msg="bad")
    if finish == "succeed":
        assert rig.store.succeed(claim, "job-12", reconciled=False)
    else:
        assert rig.store.fail(claim, error, in_doubt=False)
    before = rig.status(msg)

    late = ErrorPayload(error_msg="late writer")
    for writer in (claim, Claim(msg.ticket, msg.run)):  # the holder, and anyone
        assert rig.store.fail(writer, late) is False
        assert rig.store.fail(writer, late, in_doubt=True) is False
        assert rig.store.retrying(writer, late, in_doubt=True, due_at=0.0) is False
        assert rig.store.succeed(writer, "job-late", reconciled=True) is False
        assert rig.store.start_attempt(writer, lease_s=lease_s) is False
        assert rig.store.renew(writer, lease_s=lease_s) is False
        assert rig.store.defer(msg.ticket, msg.run, due_at=0.0) is False

    after = rig.status(msg)
    assert after == before
    assert after.state is (TicketState.SUCCEEDED if finish == "succeed" else TicketState.FAILED)
    assert not rig.in_doubt(msg)
    assert rig.store.begin(msg.ticket, msg.run, lease_s=lease_s) == "done"


# -- the gate: rate limit and breaker -------------------------------------------------------------


class ClosedGate:
    """A gate that holds every call of one API for a while, and counts what it was told."""

    def __init__(self, api: str, wait_s: float, reason: Any = "rate") -> None:
        self.api, self.wait_s, self.reason = api, wait_s, reason
        self.outcomes: list[tuple[str, object]] = []

    def before_call(self, project_id: str, api: Any) -> None:
        from htap_sync.worker.gate import MustWait

        if api == self.api:
            raise MustWait(self.wait_s, self.reason)

    def after_call(self, project_id: str, api: Any, error: object) -> None:
        self.outcomes.append((api, error))


@pytest.mark.parametrize("reason", ["rate", "breaker"])
def test_waiting_at_the_gate_costs_no_attempt_and_sends_nothing(rig: Rig, reason: str) -> None:
    """A ticket held by the rate limit or the breaker goes back to the delayed set, queued,
    with no attempt spent and no doubt raised."""
    msg = rig.submit()
    gate = ClosedGate("create", 42.0, reason)
    before = time.time()
    outcome = process_ticket(
        msg.ticket,
        msg.run,
        msg.payload,
        client=rig.client,
        store=rig.store,
        settings=rig.settings,
        rng=rig.rng,
        gate=gate,
    )
    assert outcome == Outcome("waiting", delay_s=42.0, reason=reason)
    assert rig.api.methods == []
    status = rig.status(msg)
    assert (status.state, status.attempts) == (TicketState.QUEUED, 0)
    assert not rig.in_doubt(msg)
    due = rig.redis.zscore(rig.store.delayed_key, f"{msg.ticket}:{msg.run}")
    assert due is not None and before + 42 <= due <= time.time() + 42
    # The next delivery goes ahead as if nothing had happened.
    rig.api.answer_creates(created("job-gate"))
    assert rig.deliver(msg) == Outcome("finished", reason="created")
    assert rig.status(msg).attempts == 1


def test_the_gate_hears_every_outcome(rig: Rig) -> None:
    """Each API call's outcome reaches the gate: the breaker and the bucket learn from it."""
    msg = rig.submit()
    gate = ClosedGate("none", 0.0)
    rig.api.answer_creates(refused(503, "DBS.108000", "down"), created("job-x"))
    for _ in range(2):
        process_ticket(
            msg.ticket,
            msg.run,
            msg.payload,
            client=rig.client,
            store=rig.store,
            settings=rig.settings,
            rng=rig.rng,
            gate=gate,
        )
    assert [api for api, _ in gate.outcomes] == ["create", "list", "create"]
    assert [type(e).__name__ for _, e in gate.outcomes] == ["ServerError", "NoneType", "NoneType"]


def test_no_create_call_until_replicas_hold_the_in_doubt_mark(rig: Rig) -> None:
    """Asked for a replica that this lone Redis lacks, the worker waits and sends nothing."""
    msg = rig.submit()
    outcome = rig.deliver(msg, replicas=1)
    assert (outcome.kind, outcome.reason) == ("waiting", "replication")
    assert rig.api.methods == []
    status = rig.status(msg)
    assert (status.state, status.attempts) == (TicketState.RETRYING, 0)
    assert not rig.in_doubt(msg)
    assert status.error is not None and status.error.error_code == "HTAP_SYNC.NOT_REPLICATED"
    # Once no replica is asked for (or one acknowledges), the same message goes through.
    rig.api.answer_creates(created("job-r"))
    assert rig.deliver(msg) == Outcome("finished", reason="created")
    assert rig.status(msg).attempts == 1


def test_a_cancelled_task_of_ours_ends_the_409_loop(rig: Rig) -> None:
    """After an earlier attempt, "name exists" with our task Cancelled in the list is ours:
    succeeded (following reports the failure), not 409 after 409 until the budget runs out."""
    msg = fail_once_with_503(rig)
    rig.api.show(msg.payload, stage="Cancelled")
    rig.api.answer_creates(refused(409, NAME_EXISTS, "Task name already exists."))
    # In doubt: the list shows only a Cancelled task, which is nobody's: the create goes out.
    assert rig.deliver(msg) == Outcome("finished", reason="reconciled")
    assert rig.api.methods == ["POST", "GET", "POST", "GET"]
    status = rig.status(msg)
    assert status.reconciled and status.found is not None
    assert status.found["stage"] == "Cancelled"


def test_a_cancelled_task_of_someone_else_fails_a_first_attempt(rig: Rig) -> None:
    """On a first attempt, a Cancelled task holding the name is not ours: the 409 stands."""
    msg = rig.submit()
    rig.api.show(msg.payload, stage="Cancelled")
    rig.api.answer_creates(refused(409, NAME_EXISTS, "Task name already exists."))
    assert rig.deliver(msg) == Outcome("finished", reason="Rejected")
    assert rig.api.methods == ["POST", "GET"]


def test_a_success_keeps_the_api_request_id(rig: Rig) -> None:
    """The create call's X-Request-Id is kept in the history of a success, as for an error."""
    msg = rig.submit()
    rig.api.answer_creates(created("job-rid"))
    assert rig.deliver(msg) == Outcome("finished", reason="created")
    (call,) = rig.status(msg).history
    assert (call.outcome, call.request_id) == ("created", "req-job-rid")
