"""The durable delayed set and its mover, on real Redis with an injected clock."""

from __future__ import annotations

from typing import Any

import pytest

from htap_sync.common.connections import make_redis
from htap_sync.common.models import ErrorPayload, parse_request
from htap_sync.common.settings import Settings
from htap_sync.common.tickets.claims import Claim
from htap_sync.common.tickets.claims_redis import RedisClaimStore
from htap_sync.common.tickets.delayed import DelayedSet
from htap_sync.worker.mover import DelayedMover
from tests.conftest import request_data

ERROR = ErrorPayload(http_status=503, error_code="DBS.108000", error_msg="down")


class Clock:
    """Seconds since the epoch that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    """A fresh controllable clock."""
    return Clock()


@pytest.fixture
def parts(settings: Settings, clock: Clock) -> tuple[RedisClaimStore, DelayedSet]:
    """A store and a delayed set on the test's keys, both on the injected clock."""
    client = make_redis(settings)
    store = RedisClaimStore(
        client, key_prefix=settings.key_prefix, result_ttl_s=60, clock=clock, watch_s=60
    )
    return store, DelayedSet(client, key_prefix=settings.key_prefix, clock=clock)


def _waiting(store: RedisClaimStore, name: str, due_at: float) -> Claim:
    ticket, run, _ = store.submit(parse_request(request_data(task_name=name)))
    claim = store.begin(ticket, run, lease_s=10)
    assert isinstance(claim, Claim)
    assert store.retrying(claim, ERROR, in_doubt=False, due_at=due_at)
    return claim


def test_members_are_claimed_only_when_due_and_only_once(
    parts: tuple[RedisClaimStore, DelayedSet], clock: Clock
) -> None:
    """A waiting ticket is not claimable before it is due, and one claim hides it from others."""
    store, delayed = parts
    claim = _waiting(store, "due_later", clock.now + 30)
    assert delayed.depth() == 1
    assert delayed.claim_due() == []
    assert delayed.next_due_in_s() == pytest.approx(30)
    clock.now += 30
    (due,) = delayed.claim_due(claim_s=60)
    assert (due.ticket, due.run) == (claim.ticket, claim.run)
    assert delayed.claim_due() == []  # claimed: another mover does not get it
    assert delayed.release(due)
    assert delayed.depth() == 0


def test_a_claim_that_is_never_released_falls_due_again(
    parts: tuple[RedisClaimStore, DelayedSet], clock: Clock
) -> None:
    """A mover that dies after claiming loses nothing: the member is due again after claim_s."""
    store, delayed = parts
    _waiting(store, "mover_died", clock.now)
    assert len(delayed.claim_due(claim_s=60)) == 1
    clock.now += 59
    assert delayed.claim_due(claim_s=60) == []
    clock.now += 2
    assert len(delayed.claim_due(claim_s=60)) == 1


def test_release_keeps_a_member_rescheduled_meanwhile(
    parts: tuple[RedisClaimStore, DelayedSet], clock: Clock
) -> None:
    """If the ticket was rescheduled after the claim, releasing the old claim keeps the new wait."""
    store, delayed = parts
    claim = _waiting(store, "rescheduled", clock.now)
    (due,) = delayed.claim_due()
    again = store.begin(claim.ticket, claim.run, lease_s=10)
    assert isinstance(again, Claim)
    assert store.retrying(again, ERROR, in_doubt=False, due_at=clock.now + 100)
    assert not delayed.release(due)
    assert delayed.depth() == 1


def test_postpone_moves_a_claimed_member_in_one_step_and_keeps_a_rescheduled_one(
    parts: tuple[RedisClaimStore, DelayedSet], clock: Clock
) -> None:
    """A postponed claim is due again ``delay_s`` later (never out of the set in between);
    one rescheduled since its claim keeps its own time."""
    store, delayed = parts
    claim = _waiting(store, "postponed", clock.now)
    (due,) = delayed.claim_due(claim_s=60)
    delayed.postpone(due, 8)
    assert delayed.next_due_in_s() == pytest.approx(8)
    clock.now += 8
    (due,) = delayed.claim_due(claim_s=60)
    again = store.begin(claim.ticket, claim.run, lease_s=10)
    assert isinstance(again, Claim)
    assert store.retrying(again, ERROR, in_doubt=False, due_at=clock.now + 100)
    delayed.postpone(due, 8)
    assert delayed.next_due_in_s() == pytest.approx(100)


def test_mover_requeues_due_tickets_and_drops_stale_ones(
    parts: tuple[RedisClaimStore, DelayedSet], clock: Clock
) -> None:
    """The mover sends each due, unfinished ticket once with its recorded request."""
    store, delayed = parts
    live = _waiting(store, "still_waiting", clock.now)
    stale = _waiting(store, "redriven_since", clock.now)
    finished = _waiting(store, "finished_since", clock.now)
    later = _waiting(store, "not_yet", clock.now + 500)
    # A failed-then-re-driven ticket has a new run: its old member is stale.
    claim = store.begin(stale.ticket, stale.run, lease_s=10)
    assert isinstance(claim, Claim)
    store.fail(claim, ERROR)
    store.submit(parse_request(request_data(task_name="redriven_since")))
    claim = store.begin(finished.ticket, finished.run, lease_s=10)
    assert isinstance(claim, Claim)
    store.succeed(claim, "job", reconciled=False)

    sent: list[tuple[str, str, dict[str, Any]]] = []
    mover = DelayedMover(delayed, store, lambda t, r, req: sent.append((t, r, req)))
    assert mover.run_once() == 1
    assert sent == [(live.ticket, live.run, request_data(task_name="still_waiting"))]
    # Left: the one not yet due, the watchdog of the re-driven ticket's new run (watch_s =
    # 60), and the sent ticket's watchdog (the mover's watch_s, 300 s).
    assert delayed.depth() == 3
    assert delayed.next_due_in_s() == pytest.approx(60)
    assert mover.run_once() == 0  # nothing due again
    assert later.ticket != live.ticket


def test_a_ticket_sent_again_keeps_a_watchdog_that_a_redis_restart_brings_forward(
    parts: tuple[RedisClaimStore, DelayedSet], clock: Clock
) -> None:
    """A waiting ticket the mover sent, whose message was then lost (the soak saw one, after
    a worker kill and a Redis restart: queued, 0 attempts, no member left): it still has a
    watchdog; after a Redis restart (expedite) it is sent again at once."""
    store, delayed = parts
    ticket, run, _ = store.submit(parse_request(request_data(task_name="sent_then_lost")))
    claim = store.begin(ticket, run, lease_s=10)
    assert isinstance(claim, Claim)
    store.postpone(claim, due_at=clock.now)  # a wait on purpose (the rate), no attempt
    sent: list[str] = []
    mover = DelayedMover(delayed, store, lambda t, r, req: sent.append(t), watch_s=300)
    assert mover.run_once() == 1 and sent == [claim.ticket]  # its message: lost
    assert delayed.depth() == 1
    assert delayed.next_due_in_s() == pytest.approx(300)
    assert delayed.expedite() == 1  # a Redis restart: unfinished tickets' wake-ups now
    assert mover.run_once() == 1 and sent == [claim.ticket, claim.ticket]
    again = store.begin(claim.ticket, claim.run, lease_s=10)
    assert isinstance(again, Claim)
    store.succeed(again, "job", reconciled=False)
    assert delayed.depth() == 0  # a finished ticket leaves no watchdog behind


def test_the_watchdog_requeues_a_ticket_whose_message_was_lost(
    parts: tuple[RedisClaimStore, DelayedSet], clock: Clock
) -> None:
    """A queued ticket with no message anywhere (lost in a Redis crash) is queued again once
    its watchdog falls due and the queue is empty; not while the queue still holds messages."""
    store, delayed = parts
    ticket, run, _ = store.submit(parse_request(request_data(task_name="lost_message")))
    sent: list[str] = []
    depth = [5]
    mover = DelayedMover(
        delayed, store, lambda t, r, req: sent.append(t), queue_depth=lambda: depth[0], watch_s=60
    )
    assert mover.run_once() == 0  # not due yet
    clock.now += 61
    assert mover.run_once() == 0  # due, but the queue is busy: its message may be there
    assert delayed.depth() == 1
    depth[0] = 0
    clock.now += 61
    assert mover.run_once() == 1 and sent == [ticket]
    claim = store.begin(ticket, run, lease_s=10)
    assert isinstance(claim, Claim)
    store.succeed(claim, "job", reconciled=False)
    assert delayed.depth() == 0  # a finished ticket leaves no watchdog behind
