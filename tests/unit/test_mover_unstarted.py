"""Messages a worker took and never started (its process was SIGKILLed between taking and
starting them): their tickets are sent again as soon as the message is older than the
heartbeat's lifetime, not after the broker's visibility timeout (issue 20, item 4)."""

from __future__ import annotations

import json
from typing import Any

from celery import Celery

from htap_sync.common.broker_queue import Taken, tickets_of
from htap_sync.common.messages import batch_frame, batch_item, create_message
from htap_sync.worker.mover import DelayedMover

APP = Celery("test")


def _unacked_entry(message: str) -> str:
    """What kombu's Redis transport keeps in its unacked hash: ``[message, exchange, key]``."""
    return json.dumps([json.loads(message), "q", "q"])


def test_a_create_message_names_its_ticket_and_run() -> None:
    message = create_message(APP, "q", "t1", "r1", {"project_id": "p"})
    assert tickets_of(_unacked_entry(message)) == (("t1", "r1"),)


def test_a_batch_message_names_each_of_its_tickets() -> None:
    frame = batch_frame(APP, "q", 16)
    message = frame.filled([batch_item(f"t{i}", f"r{i}", {"project_id": "p"}) for i in range(3)])
    assert tickets_of(_unacked_entry(message)) == (("t0", "r0"), ("t1", "r1"), ("t2", "r2"))


def test_what_is_not_a_message_of_ours_names_nothing() -> None:
    for raw in ["", "[]", "{}", "not json", json.dumps([{"body": "%%%"}]), '[{"body": "[1]"}]']:
        assert tickets_of(raw) == (), raw
    odd = json.dumps([{"body": json.dumps([[], {"ticket": 1, "run": "r"}, {}])}])
    assert tickets_of(odd) == ()


class FakeStore:
    """Each ticket's pending state, as :meth:`ClaimStore.pending_request` answers."""

    def __init__(self, states: dict[str, str | None]) -> None:
        self.states = states

    def pending_request(self, ticket: str, run: str) -> tuple[str, dict[str, Any]] | None:
        state = self.states.get(ticket)
        return None if state is None else (state, {"ticket": ticket})


class NoDelayed:
    def claim_due(self, **_: Any) -> list[Any]:
        return []


def _mover(
    taken: list[Taken], states: dict[str, str | None], first: set[str] | None = None
) -> tuple[DelayedMover, list[str], list[float]]:
    sent: list[str] = []
    asked: list[float] = []

    def taken_before(before: float) -> list[Taken]:
        asked.append(before)
        return taken

    mover = DelayedMover(
        NoDelayed(),  # type: ignore[arg-type]
        FakeStore(states),  # type: ignore[arg-type]
        send=lambda ticket, run, request: sent.append(ticket),
        taken=taken_before,
        once=lambda tag: first is None or tag in first,
        unstarted_s=10.0,
        clock=lambda: 1000.0,
    )
    return mover, sent, asked


def test_tickets_no_live_delivery_holds_are_sent_again_once() -> None:
    taken = [
        Taken("a", (("queued", "r"), ("held", "r"), ("done", "r"))),
        Taken("b", (("retrying", "r"), ("waiting", "r"), ("running", "r"))),
    ]
    states: dict[str, str | None] = {
        s: s for s in ["queued", "held", "retrying", "waiting", "running"]
    }
    mover, sent, asked = _mover(taken, states)
    assert mover.run_once() == 4
    assert sent == ["queued", "retrying", "waiting", "running"]
    assert asked == [990.0]  # taken more than the heartbeat's lifetime ago
    # Asked about once: the next look sends nothing again.
    assert mover.run_once() == 0
    assert sent == ["queued", "retrying", "waiting", "running"]


def test_a_message_another_mover_looked_at_is_left_to_it() -> None:
    taken = [Taken("a", (("t1", "r"),)), Taken("b", (("t2", "r"),))]
    mover, sent, _ = _mover(taken, {"t1": "queued", "t2": "queued"}, first={"b"})
    assert mover.run_once() == 1
    assert sent == ["t2"]


def test_without_a_look_at_taken_messages_nothing_is_sent() -> None:
    mover = DelayedMover(
        NoDelayed(),  # type: ignore[arg-type]
        FakeStore({}),  # type: ignore[arg-type]
        send=lambda *_: None,
    )
    assert mover.send_unstarted() == 0
