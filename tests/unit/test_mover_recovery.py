"""The mover survives a recovery that meets Redis unavailable (a failover's NOREPLICAS): it
tries again at its next look, and never dies of it (a dead mover left a ticket waiting for
good in the delayed set)."""

from __future__ import annotations

import threading
from typing import Any

import redis

from htap_sync.worker.mover import DelayedMover


class FakeDelayed:
    """A delayed set with nothing due, on a Redis whose run id changes after the first look."""

    def __init__(self) -> None:
        self.looks = 0

    def claim_due(self, **_: Any) -> list[Any]:
        return []

    def next_due_in_s(self) -> float | None:
        return None

    def server_id(self) -> str:
        self.looks += 1
        return "first" if self.looks == 1 else "second"


def test_a_recovery_that_fails_is_tried_again_and_the_mover_lives() -> None:
    delayed = FakeDelayed()
    calls: list[str] = []
    done = threading.Event()

    def recover() -> None:
        calls.append("recover")
        if len(calls) == 1:
            raise redis.ResponseError("NOREPLICAS Not enough good replicas to write.")
        done.set()

    mover = DelayedMover(
        delayed,  # type: ignore[arg-type]
        store=None,  # type: ignore[arg-type]
        send=lambda *_: None,
        interval_s=0.01,
        on_recovery=recover,
    )
    mover.start()
    try:
        assert done.wait(5.0), calls
        assert calls == ["recover", "recover"]
    finally:
        mover.stop()


def test_a_send_that_fails_with_a_broker_error_does_not_end_the_mover() -> None:
    """A look whose send fails with something other than a Redis error (kombu's
    OperationalError during a failover killed the thread once, and with it the process's
    watch for Redis restarts): the mover logs it and looks again."""
    from kombu.exceptions import OperationalError

    from htap_sync.common.tickets.delayed import Due

    class OneDue(FakeDelayed):
        def claim_due(self, **_: Any) -> list[Any]:
            return [Due("tk_1", "run", "0")]

        def release(self, due: Any) -> None:
            pass

    class Store:
        def pending_request(self, ticket: str, run: str) -> tuple[str, dict[str, Any]]:
            return "retrying", {"ticket": ticket}

    sends: list[str] = []
    done = threading.Event()

    def send(ticket: str, run: str, request: dict[str, Any]) -> None:
        sends.append(ticket)
        if len(sends) == 1:
            raise OperationalError("Connection closed by server.")
        done.set()

    mover = DelayedMover(OneDue(), Store(), send, interval_s=0.01)  # type: ignore[arg-type]
    mover.start()
    try:
        assert done.wait(5.0), sends
    finally:
        mover.stop()
