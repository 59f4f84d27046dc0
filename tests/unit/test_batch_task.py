"""How the batch task ends, with the deliveries stubbed (``process_batch`` is tested on Redis
with the guarantee tests of tests/integration/process, and in tests/integration)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import redis
from celery.exceptions import Reject

from htap_sync.common.settings import load_settings
from htap_sync.worker import batch
from htap_sync.worker.batch import run_batch
from htap_sync.worker.verdicts import TicketFailed

SETTINGS = load_settings({"redis_url": "redis://127.0.0.1:1/0"}, env_file=None)
CLIENT = object()


class FakeRuntime:
    """Hands out the batch client the stubbed deliveries check they are given."""

    def __init__(self) -> None:
        self.abandoned: list[tuple[str, str]] = []

    def abandon(self, ticket: str, run: str) -> None:
        self.abandoned.append((ticket, run))

    def get(self) -> Any:
        def delivery(settings: Any, *, batch: bool = False) -> Any:
            # The batch task must ask for the batch's client (its calls go out together).
            return SimpleNamespace(client=CLIENT if batch else object(), store=None)

        return SimpleNamespace(delivery=delivery, store=None)


def _stub(
    monkeypatch: pytest.MonkeyPatch, ends: dict[str, Any], whole: Exception | None = None
) -> list[str]:
    """Replace the deliveries: each ticket settles as ``ends`` says (returns or raises it);
    with ``whole``, the batch's deliveries raise it (and each ticket settles for real)."""
    seen: list[str] = []

    def process_batch(items: list[tuple[str, str, Any]], d: Any) -> list[Any]:
        assert d.client is CLIENT
        if whole is not None:
            raise whole
        seen.extend(ticket for ticket, _, _ in items)
        return [ticket for ticket, _, _ in items]

    def settle(ticket: str, run: str, end: Any, **_: Any) -> str:
        assert run == f"run-{ticket}"
        found = ends[ticket]
        if isinstance(found, BaseException):
            raise found
        return str(found)

    monkeypatch.setattr(batch, "process_batch", process_batch)
    if whole is None:
        monkeypatch.setattr(batch, "settle", settle)
    return seen


def _items(*tickets: str) -> list[list[Any]]:
    return [[t, f"run-{t}", {"task_name": t}] for t in tickets]


def test_the_task_reports_each_kind_of_outcome(monkeypatch: pytest.MonkeyPatch) -> None:
    """16 deliveries in one batch; the task counts each kind of outcome."""
    tickets = [f"t{i}" for i in range(16)]
    ends = {t: "finished" if i % 4 else "skipped" for i, t in enumerate(tickets)}
    seen = _stub(monkeypatch, ends)
    assert run_batch(SETTINGS, FakeRuntime(), _items(*tickets)) == "finished 12, skipped 4"  # type: ignore[arg-type]
    assert seen == tickets


def test_a_step_of_the_whole_batch_ends_every_ticket_with_its_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Redis error starting the batch gives the message back, each ticket's delivery
    remembered as given up (released once Redis is back)."""
    _stub(monkeypatch, {}, whole=redis.ConnectionError("gone"))
    runtime = FakeRuntime()
    with pytest.raises(Reject):
        run_batch(SETTINGS, runtime, _items("a", "b"))  # type: ignore[arg-type]
    assert runtime.abandoned == [("a", "run-a"), ("b", "run-b")]


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
    assert seen == ["a", "b", "c"]


def test_a_redis_error_gives_the_whole_batch_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """One ticket's Redis outage requeues the message (the others, finished, are skipped
    when it returns); every ticket was still tried."""
    ends = {"a": "finished", "b": Reject("Redis down", requeue=True), "c": "waiting"}
    seen = _stub(monkeypatch, ends)
    with pytest.raises(Reject) as caught:
        run_batch(SETTINGS, FakeRuntime(), _items("a", "b", "c"))  # type: ignore[arg-type]
    assert caught.value.requeue and seen == ["a", "b", "c"]  # type: ignore[attr-defined]


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
