"""One contract for the worker's ticket store, run on both backends: in memory and on Redis.

The Redis store keeps each claim and write in a Lua script; these tests pin that the memory
store, on which the worker's unit tier runs ``process_ticket``, behaves exactly as it does,
at explicit times (both run on the same hand-moved clock).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis

from htap_sync.common.connections import make_redis
from htap_sync.common.errors import TicketConflict, TicketNotFound
from htap_sync.common.models import Attempt, ErrorPayload, TicketState, parse_request
from htap_sync.common.settings import load_settings
from htap_sync.common.sync_info import NO_JOB_ID_REASON
from htap_sync.common.tickets.claim_types import ALIVE_TTL_S, PROBE_S
from htap_sync.common.tickets.claims import Claim, NotReplicated
from htap_sync.common.tickets.claims_memory import MemoryClaimStore
from htap_sync.common.tickets.claims_redis import RedisClaimStore
from htap_sync.common.tickets.store import Submitted
from tests.conftest import request_data
from tests.scripted_api import FakeClock

Store = MemoryClaimStore | RedisClaimStore

ERROR = ErrorPayload(http_status=503, error_code="DBS.108000", error_msg="down")
LEASE_S = 10.0
WATCH_S = 60.0
RESULT_TTL_S = 600


@pytest.fixture(scope="module")
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on the session's Redis."""
    client = make_redis(load_settings({"redis_url": redis_url}, env_file=None))
    yield client
    client.close()


@pytest.fixture
def clock() -> FakeClock:
    """The time both stores run on, moved by hand."""
    return FakeClock()


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest, clock: FakeClock) -> Store:
    """Each backend in turn, on its own keys."""
    if request.param == "memory":
        return MemoryClaimStore(result_ttl_s=RESULT_TTL_S, watch_s=WATCH_S, clock=clock)
    return RedisClaimStore(
        request.getfixturevalue("redis_client"),
        key_prefix=f"contract-{uuid.uuid4().hex[:12]}",
        result_ttl_s=RESULT_TTL_S,
        watch_s=WATCH_S,
        clock=clock,
    )


def submit(store: Store, name: str = "contract_task", **changes: str) -> tuple[str, str]:
    """A new ticket: ``(ticket, run)``."""
    ticket, run, what = store.submit(parse_request(request_data(task_name=name, **changes)))
    assert what is Submitted.QUEUED
    return ticket, run


def claim(store: Store, ticket: str, run: str) -> Claim:
    """A delivery's claim, which must be granted."""
    taken = store.begin(ticket, run, lease_s=LEASE_S)
    assert isinstance(taken, Claim), taken
    return taken


def attempted(store: Store, name: str = "contract_task") -> Claim:
    """A ticket whose first create call went out (in doubt)."""
    held = claim(store, *submit(store, name))
    assert store.start_attempt(held, lease_s=LEASE_S)
    return held


def a_note(outcome: str = "error") -> Attempt:
    """A history entry."""
    return Attempt.model_validate({"at": datetime.now(UTC), "call": "create", "outcome": outcome})


def test_submit_queues_once_and_refuses_another_request_under_the_name(
    store: Store, clock: FakeClock
) -> None:
    """A name is queued once; the same request again is a duplicate, another one a conflict."""
    ticket, run = submit(store)
    again = store.submit(parse_request(request_data(task_name="contract_task")))
    assert again[0] == ticket and again[2] is Submitted.DUPLICATE
    status = store.get(ticket)
    assert (status.state, status.attempts, status.history) == (TicketState.QUEUED, 0, [])
    assert store.due_at(ticket, run) == pytest.approx(clock.now + WATCH_S)  # its watchdog
    other = request_data(task_name="contract_task", source_database="another_db")
    with pytest.raises(TicketConflict):
        store.submit(parse_request(other))


def test_a_failed_ticket_is_redriven_as_a_new_run_that_keeps_its_doubt_and_history(
    store: Store,
) -> None:
    """A re-drive of a failure that may have created the task starts a run that looks first."""
    held = attempted(store)
    assert store.fail(held, ERROR, note=a_note())
    assert [s.ticket for s in store.failed()] == [held.ticket]
    ticket, run, what = store.submit(parse_request(request_data(task_name="contract_task")))
    assert (ticket, what) == (held.ticket, Submitted.REDRIVEN) and run != held.run
    assert store.failed() == []
    assert store.begin(ticket, held.run, lease_s=LEASE_S) == "stale"
    again = claim(store, ticket, run)
    assert (again.in_doubt, again.attempts, again.prior) == (True, 0, TicketState.QUEUED)
    assert len(store.get(ticket).history) == 1


def test_begin_says_why_a_delivery_must_do_nothing(store: Store, clock: FakeClock) -> None:
    """Missing, stale, busy while a lease runs, granted once it ended, done once finished."""
    ticket, run = submit(store)
    assert store.begin("no-such-ticket", run, lease_s=LEASE_S) == "missing"
    assert store.begin(ticket, uuid.uuid4().hex, lease_s=LEASE_S) == "stale"
    held = claim(store, ticket, run)
    clock.advance(LEASE_S - 0.5)
    assert store.begin(ticket, run, lease_s=LEASE_S) == "busy"
    clock.advance(1.0)
    taken_over = claim(store, ticket, run)
    assert taken_over.holder != held.holder and taken_over.prior is TicketState.RUNNING
    assert store.succeed(taken_over, "job-1", reconciled=False)
    assert store.begin(ticket, run, lease_s=LEASE_S) == "done"


def test_a_claim_carries_what_the_delivery_needs(store: Store, clock: FakeClock) -> None:
    """The claim has the recorded request, doubt, attempts, age; its watchdog moves past it."""
    ticket, run = submit(store)
    created_at = clock.now
    clock.advance(3.0)
    held = claim(store, ticket, run)
    fingerprint = parse_request(request_data(task_name="contract_task")).fingerprint()
    assert (held.in_doubt, held.attempts, held.fingerprint) == (False, 0, fingerprint)
    assert held.created_at is not None
    assert held.created_at.timestamp() == pytest.approx(created_at, abs=0.001)
    assert store.get(ticket).state is TicketState.RUNNING
    assert store.due_at(ticket, run) == pytest.approx(clock.now + PROBE_S)  # its holder's probe


def test_an_attempt_is_counted_and_its_doubt_kept_through_a_retry(
    store: Store, clock: FakeClock
) -> None:
    """start_attempt counts and marks doubt; retrying records the error and the wake-up."""
    held = attempted(store)
    assert store.retrying(held, ERROR, in_doubt=True, due_at=clock.now + 5, note=a_note())
    status = store.get(held.ticket)
    assert (status.state, status.attempts, status.error) == (TicketState.RETRYING, 1, ERROR)
    assert store.due_at(held.ticket, held.run) == pytest.approx(clock.now + 5)
    again = claim(store, held.ticket, held.run)  # retrying released the lease
    assert (again.in_doubt, again.attempts, again.prior) == (True, 1, TicketState.RETRYING)


def test_a_refunded_attempt_is_given_back_and_doubt_can_be_cleared(store: Store) -> None:
    """A throttled call costs no attempt; an answer proving nothing was created clears doubt."""
    held = attempted(store)
    assert store.retrying(held, ERROR, in_doubt=False, due_at=0.0, refund_attempt=True)
    again = claim(store, held.ticket, held.run)
    assert (again.attempts, again.in_doubt) == (0, False)


def test_a_holder_whose_lease_was_taken_over_can_no_longer_write(
    store: Store, clock: FakeClock
) -> None:
    """Once another delivery took the ticket, every write of the slow one is refused."""
    slow = attempted(store)
    clock.advance(LEASE_S + 1)
    fast = claim(store, slow.ticket, slow.run)
    assert store.renew(slow, lease_s=LEASE_S) is False
    assert store.start_attempt(slow, lease_s=LEASE_S) is False
    assert store.retrying(slow, ERROR, in_doubt=True, due_at=0.0) is False
    assert store.postpone(slow, due_at=0.0) is False
    assert store.succeed(slow, "job-slow", reconciled=False) is False
    assert store.fail(slow, ERROR) is False
    assert store.succeed(fast, "job-fast", reconciled=False)
    status = store.get(slow.ticket)
    assert (status.job_id, status.attempts) == ("job-fast", 1)


@pytest.mark.parametrize("finish", ["succeed", "fail"])
def test_late_writers_cannot_undo_a_result(store: Store, finish: str) -> None:
    """After a ticket finished, every write of its run is refused and the result stands."""
    held = attempted(store)
    if finish == "succeed":
        assert store.succeed(held, "job-12", reconciled=False)
    else:
        assert store.fail(held, ERROR, in_doubt=False)
    before = store.get(held.ticket)
    for writer in (held, Claim(held.ticket, held.run)):  # the holder, and anyone
        assert store.fail(writer, ERROR, in_doubt=True) is False
        assert store.retrying(writer, ERROR, in_doubt=True, due_at=0.0) is False
        assert store.succeed(writer, "job-late", reconciled=True) is False
        assert store.start_attempt(writer, lease_s=LEASE_S) is False
    assert store.defer(held.ticket, held.run, due_at=0.0) is False
    assert store.release(held.ticket, held.run, due_at=0.0) is False
    assert store.get(held.ticket) == before
    assert store.due_at(held.ticket, held.run) is None  # a finished ticket has no wake-up


def test_a_success_keeps_the_job_or_the_list_row_it_was_found_with(store: Store) -> None:
    """A created task keeps its job id; a reconciled one its list row and why it has no id."""
    made, found = attempted(store, "made_task"), attempted(store, "found_task")
    assert store.succeed(made, "job-7", reconciled=False, note=a_note("created"))
    row = {"task_name": "found_task", "stage": "full"}
    assert store.succeed(found, None, reconciled=True, note=a_note("found"), found=row)
    one, two = store.get(made.ticket), store.get(found.ticket)
    assert (one.state, one.job_id, one.reconciled, one.job_id_reason, one.found) == (
        TicketState.SUCCEEDED,
        "job-7",
        False,
        None,
        None,
    )
    assert (two.job_id, two.reconciled, two.job_id_reason, two.found) == (
        None,
        True,
        NO_JOB_ID_REASON,
        row,
    )
    assert [a.outcome for a in one.history + two.history] == ["created", "found"]


def test_failures_are_listed_newest_first(store: Store, clock: FakeClock) -> None:
    """failed() lists failed tickets by failure time, newest first, up to its limit."""
    for name in ("first_failure", "second_failure", "third_failure"):
        held = attempted(store, name)
        assert store.fail(held, ERROR, in_doubt=False)
        clock.advance(1.0)
    names = [s.request.task_name for s in store.failed()]
    assert names == ["third_failure", "second_failure", "first_failure"]
    assert [s.request.task_name for s in store.failed(limit=1)] == ["third_failure"]


def test_pending_request_answers_only_for_an_unfinished_ticket_of_its_run(
    store: Store, clock: FakeClock
) -> None:
    """The mover gets the recorded request of a queued, running or retrying ticket only."""
    ticket, run = submit(store)
    request = request_data(task_name="contract_task")
    assert store.pending_request(ticket, run) == ("queued", request)
    held = claim(store, ticket, run)
    assert store.pending_request(ticket, run) == ("held", request)  # a live lease
    clock.advance(LEASE_S + 1)
    assert store.pending_request(ticket, run) == ("running", request)  # its lease ended
    assert store.retrying(held, ERROR, in_doubt=False, due_at=clock.now)
    assert store.pending_request(ticket, run) == ("retrying", request)
    assert store.pending_request(ticket, uuid.uuid4().hex) is None
    assert store.pending_request("no-such-ticket", run) is None
    assert store.fail(claim(store, ticket, run), ERROR)
    assert store.pending_request(ticket, run) is None


def test_defer_keeps_the_lease_and_release_gives_it_up_keeping_the_doubt(
    store: Store, clock: FakeClock
) -> None:
    """defer only reschedules; release frees the lease, so the next delivery may go at once."""
    held = attempted(store)
    assert store.defer(held.ticket, held.run, due_at=clock.now + 7)
    assert store.due_at(held.ticket, held.run) == pytest.approx(clock.now + 7)
    assert store.begin(held.ticket, held.run, lease_s=LEASE_S) == "busy"
    assert store.release(held.ticket, held.run, due_at=clock.now + 3)
    assert store.due_at(held.ticket, held.run) == pytest.approx(clock.now + 3)
    again = claim(store, held.ticket, held.run)
    assert (again.in_doubt, again.attempts) == (True, 1)


def test_postpone_puts_the_ticket_back_as_it_was_without_an_attempt(
    store: Store, clock: FakeClock
) -> None:
    """A wait at the gate leaves a fresh ticket queued and a tried one retrying, lease freed."""
    ticket, run = submit(store)
    assert store.postpone(claim(store, ticket, run), due_at=clock.now + 4)
    assert store.get(ticket).state is TicketState.QUEUED
    assert store.due_at(ticket, run) == pytest.approx(clock.now + 4)
    # Queued on purpose: the mover sends it when due (a watchdog's queued one it may park).
    assert store.pending_request(ticket, run) == ("waiting", request_data(task_name=_NAME))
    held = claim(store, ticket, run)
    assert store.start_attempt(held, lease_s=LEASE_S)
    assert store.retrying(held, ERROR, in_doubt=True, due_at=clock.now)
    assert store.postpone(claim(store, ticket, run), due_at=clock.now + 4)
    status = store.get(ticket)
    assert (status.state, status.attempts) == (TicketState.RETRYING, 1)
    assert isinstance(store.begin(ticket, run, lease_s=LEASE_S), Claim)


def test_renew_extends_the_lease(store: Store, clock: FakeClock) -> None:
    """A renewed lease turns other deliveries away until it ends in turn."""
    held = attempted(store)
    clock.advance(LEASE_S - 1)
    assert store.renew(held, lease_s=LEASE_S)
    clock.advance(LEASE_S - 1)
    assert store.begin(held.ticket, held.run, lease_s=LEASE_S) == "busy"
    clock.advance(2)
    assert isinstance(store.begin(held.ticket, held.run, lease_s=LEASE_S), Claim)


def test_the_history_keeps_the_last_twenty_calls(store: Store) -> None:
    """A ticket tried again and again keeps only its 20 latest calls, oldest first."""
    held = attempted(store)
    for i in range(25):
        note = Attempt.model_validate(
            {"at": datetime.now(UTC), "call": "create", "outcome": "error", "http_status": 500 + i}
        )
        assert store.retrying(held, ERROR, in_doubt=True, due_at=0.0, note=note)
    history = store.get(held.ticket).history
    assert [a.http_status for a in history] == list(range(505, 525))


def test_a_mark_that_must_reach_a_missing_replica_is_written_but_not_acted_on(
    store: Store,
) -> None:
    """Without replicas, start_attempt asking for one raises NotReplicated after writing."""
    held = claim(store, *submit(store))
    assert store.connected_replicas() == 0
    with pytest.raises(NotReplicated) as raised:
        store.start_attempt(held, lease_s=LEASE_S, replicas=1, wait_s=0.01)
    assert (raised.value.acked, raised.value.wanted) == (0, 1)
    assert store.get(held.ticket).attempts == 1


def test_an_unknown_ticket_reads_as_not_found(store: Store) -> None:
    """get raises TicketNotFound for a ticket never submitted; get_many answers None."""
    with pytest.raises(TicketNotFound):
        store.get("no-such-ticket")
    assert store.get_many(["no-such-ticket"]) == {"no-such-ticket": None}


_NAME = "contract_task"


def test_a_holder_whose_process_stopped_beating_is_taken_over_at_once(
    store: Store, clock: FakeClock
) -> None:
    """A claim names its process; while that process beats, its ticket is busy (and held for
    the mover); once the beat lapses, the next delivery takes the ticket over before the
    lease ends, told until when the dead holder's last call may still be on its way."""
    long_lease_s = 6 * ALIVE_TTL_S
    store.node = "w1"
    store.beat("w1", ttl_s=ALIVE_TTL_S)
    held = claim(store, *submit(store))
    assert held.holder.startswith("w1.")
    assert store.start_attempt(held, lease_s=long_lease_s)
    lease_end = clock.now + long_lease_s
    store.node = "w2"
    clock.advance(ALIVE_TTL_S - 1)
    assert store.begin(held.ticket, held.run, lease_s=LEASE_S) == "busy"
    request = request_data(task_name=_NAME)
    assert store.pending_request(held.ticket, held.run) == ("held", request)
    clock.advance(2)  # w1's beat lapsed; its lease still runs
    assert store.pending_request(held.ticket, held.run) == ("running", request)
    taken = claim(store, held.ticket, held.run)
    assert taken.holder.startswith("w2.") and taken.in_doubt
    assert taken.dead_lease_until == pytest.approx(lease_end)
    # The dead holder can no longer write, nor mark another attempt.
    assert not store.start_attempt(held, lease_s=LEASE_S)


def test_a_holder_that_names_no_process_keeps_its_lease(store: Store, clock: FakeClock) -> None:
    """Without a node (a store that names no process), only the lease says a holder is gone."""
    held = attempted(store)
    clock.advance(LEASE_S - 1)
    assert store.begin(held.ticket, held.run, lease_s=LEASE_S) == "busy"
    clock.advance(2)
    assert claim(store, held.ticket, held.run).dead_lease_until == 0.0


REF = "p1/i1"


def row(stage: str) -> str:
    return '{"task_name":"a","stage":"' + stage + '"}'


def test_a_shared_list_has_one_lister_at_a_time_and_numbers_each_call(store: Store) -> None:
    """claim_list numbers each list call before it is sent and refuses a second lister while
    one holds the claim; record_list keeps its rows and frees the claim; listed answers only
    from a snapshot numbered above ``after`` (its row, or None for a task not listed)."""
    assert store.list_epoch(REF) == 0 and store.listed(REF, "a", after=0) is None
    first = store.claim_list(REF, hold_s=LEASE_S)
    assert first is not None and first[0] == 1
    assert store.claim_list(REF, hold_s=LEASE_S) is None  # one lister at a time
    assert store.claim_list("p1/other", hold_s=LEASE_S) is not None  # per instance
    assert store.record_list(REF, first[0], first[1], {"a": row("Full")}, ttl_s=60)
    found = store.listed(REF, "a", after=0)
    assert found is not None and (found.epoch, found.row) == (1, row("Full"))
    missing = store.listed(REF, "b", after=0)
    assert missing is not None and (missing.epoch, missing.row) == (1, None)
    assert store.listed(REF, "a", after=1) is None  # not fresh enough for a ticket at 1
    second = store.claim_list(REF, hold_s=LEASE_S)
    assert second is not None and second[0] == 2 and store.list_epoch(REF) == 2
    store.release_list(REF, second[1])  # its call kept nothing
    third = store.claim_list(REF, hold_s=LEASE_S)
    assert third is not None and third[0] == 3


def test_a_slower_older_list_never_replaces_a_newer_snapshot(store: Store) -> None:
    """A list call numbered before the kept snapshot's is not kept (its lister's claim is
    freed all the same); a later one replaces the rows entirely."""
    old = store.claim_list(REF, hold_s=LEASE_S)
    assert old is not None
    store.release_list(REF, "another lister's token")  # not its: the claim stays
    assert store.claim_list(REF, hold_s=LEASE_S) is None
    store.release_list(REF, old[1])
    new = store.claim_list(REF, hold_s=LEASE_S)
    assert new is not None and new[0] > old[0]
    assert store.record_list(REF, new[0], new[1], {"a": row("Paused")}, ttl_s=60)
    assert not store.record_list(REF, old[0], old[1], {"a": row("Full")}, ttl_s=60)
    found = store.listed(REF, "a", after=0)
    assert found is not None and (found.epoch, found.row) == (new[0], row("Paused"))
    later = store.claim_list(REF, hold_s=LEASE_S)
    assert later is not None
    assert store.record_list(REF, later[0], later[1], {"b": row("Full")}, ttl_s=60)
    gone = store.listed(REF, "a", after=0)
    assert gone is not None and gone.row is None  # the later call did not list it


def test_an_operation_ticket_notes_the_list_counter_at_each_moment(store: Store) -> None:
    """Submitted, an operation ticket notes the instance's counter (its first look needs a
    later call); operation_sent and postpone note the numbers they are given."""
    from htap_sync.common.operations import parse_operation

    data = request_data(task_name="contract_op")
    ref = f"{data['project_id']}/{data['instance_id']}"
    for _ in range(2):
        lister = store.claim_list(ref, hold_s=LEASE_S)
        assert lister is not None
        store.release_list(ref, lister[1])
    op = parse_operation(
        {"operation": "pause", **{k: data[k] for k in ("project_id", "instance_id", "task_name")}}
    )
    if isinstance(store, RedisClaimStore):
        queue = store.keys.queue("contract-queue")
        ticket, outcome, _ = store.submit_operation(op, run="r1", queue_key=queue, message="{}")
    else:
        ticket, outcome, _ = store.submit_operation(op, run="r1")
    assert outcome == "queued" and store.look_after(ticket) == 2
    held = claim(store, ticket, "r1")
    assert store.operation_sent(held, "job-1", due_at=1.0, look_after=5)
    assert store.look_after(ticket) == 5
    again = claim(store, ticket, "r1")
    assert store.postpone(again, due_at=2.0, look_after=7) and store.look_after(ticket) == 7
    third = claim(store, ticket, "r1")
    assert store.postpone(third, due_at=3.0) and store.look_after(ticket) == 7  # unchanged
