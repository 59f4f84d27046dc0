"""How the batch task runs its tickets and ends, with the per-ticket delivery stubbed (the
delivery itself is the single task's, tested on Redis and in tests/integration)."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import pytest
from celery.exceptions import Reject

from htap_sync.common.settings import load_settings
from htap_sync.worker import batch
from htap_sync.worker.batch import run_batch
from htap_sync.worker.deliver import TicketFailed

SETTINGS = load_settings({"redis_url": "redis://127.0.0.1:1/0"}, env_file=None)
CLIENT = object()


class FakeRuntime:
    """Hands out a batch client the stubbed delivery checks it is given."""

    def get(self) -> Any:
        return SimpleNamespace(batch_client=CLIENT)


def _stub(monkeypatch: pytest.MonkeyPatch, ends: dict[str, Any], together: int = 0) -> list[str]:
    """Replace deliver(): each ticket returns or raises what ``ends`` says; with ``together``,
    none returns before that many are running at once (a deadline fails the test)."""
    barrier = threading.Barrier(together) if together else None
    seen: list[str] = []

    def deliver(ticket: str, run: str, request: Any, client: Any, **_: Any) -> str:
        assert client is CLIENT and run == f"run-{ticket}"
        seen.append(ticket)
        if barrier is not None:
            barrier.wait(timeout=10)
        end = ends[ticket]
        if isinstance(end, BaseException):
            raise end
        return str(end)

    monkeypatch.setattr(batch, "deliver", deliver)
    return seen


def _items(*tickets: str) -> list[list[Any]]:
    return [[t, f"run-{t}", {"task_name": t}] for t in tickets]


def test_every_ticket_of_a_batch_runs_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """16 deliveries are all in progress together; the task reports each kind of outcome."""
    tickets = [f"t{i}" for i in range(16)]
    ends = {t: "finished" if i % 4 else "skipped" for i, t in enumerate(tickets)}
    seen = _stub(monkeypatch, ends, together=16)
    assert run_batch(SETTINGS, FakeRuntime(), _items(*tickets)) == "finished 12, skipped 4"  # type: ignore[arg-type]
    assert sorted(seen) == sorted(tickets)


def test_failed_tickets_end_the_batch_in_ticket_failed_naming_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The others still run; the failure names the failed ticket, the bug's ticket and the
    malformed item."""
    ends = {
        "a": "finished",
        "b": TicketFailed("b: 400 DBS.200022 Instance not found."),
        "c": RuntimeError("bug"),
    }
    seen = _stub(monkeypatch, ends)
    raw = [*_items("a", "b", "c"), ["only-two", "x"]]
    with pytest.raises(TicketFailed) as caught:
        run_batch(SETTINGS, FakeRuntime(), raw)  # type: ignore[arg-type]
    text = str(caught.value)
    assert text.startswith("3 of 4 failed")
    assert "b: 400 DBS.200022" in text and "c: HTAP_SYNC.INTERNAL RuntimeError" in text
    assert "items[3]: expected [ticket, run, request]" in text
    assert sorted(seen) == ["a", "b", "c"]


def test_a_redis_error_gives_the_whole_batch_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """One ticket's Redis outage requeues the message (the others, finished, are skipped
    when it returns); every ticket was still tried."""
    ends = {"a": "finished", "b": Reject("Redis down", requeue=True), "c": "waiting"}
    seen = _stub(monkeypatch, ends)
    with pytest.raises(Reject) as caught:
        run_batch(SETTINGS, FakeRuntime(), _items("a", "b", "c"))  # type: ignore[arg-type]
    assert caught.value.requeue and sorted(seen) == ["a", "b", "c"]  # type: ignore[attr-defined]


def test_a_message_without_usable_items_fails_without_delivering(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not a list, or only malformed items: nothing to deliver, a clear failure."""
    seen = _stub(monkeypatch, {})
    with pytest.raises(TicketFailed, match="items: expected a list, got str"):
        run_batch(SETTINGS, FakeRuntime(), "nope")  # type: ignore[arg-type]
    with pytest.raises(TicketFailed, match="empty batch"):
        run_batch(SETTINGS, FakeRuntime(), [])  # type: ignore[arg-type]
    assert seen == []
