"""The worker's restart after a Redis restart (``lifecycle.restart_worker``): it runs what it
must before the new start, and never outlives a stop its operator asked for."""

from __future__ import annotations

import atexit
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from celery.signals import worker_shutting_down
from celery.worker import state

from htap_sync.worker import lifecycle


@pytest.fixture
def at_exit(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """What the restart registers to run at exit, and what it would exec; reset after."""
    seen: dict[str, Any] = {"at_exit": [], "execv": []}
    monkeypatch.setattr(atexit, "register", seen["at_exit"].append)
    monkeypatch.setattr(os, "execv", lambda *args: seen["execv"].append(args))
    lifecycle._stopping.clear()
    before = state.should_stop
    yield seen
    lifecycle._stopping.clear()
    state.should_stop = before


def test_a_restart_stops_warmly_then_runs_before_and_starts_again(at_exit: dict[str, Any]) -> None:
    calls: list[str] = []
    lifecycle.restart_worker(before=lambda: calls.append("before"))
    assert state.should_stop == 0  # a warm shutdown (exit code 0)
    [again] = at_exit["at_exit"]
    again()
    assert calls == ["before"]
    assert at_exit["execv"] == [(sys.executable, [sys.executable, *sys.orig_argv[1:]])]


def _stop_signal() -> None:
    """What Celery's SIGTERM handler sends when a stop is asked for."""
    worker_shutting_down.send(sender="celery@test", sig="SIGTERM", how="Warm", exitcode=0)


def test_no_restart_once_a_stop_was_asked_for(at_exit: dict[str, Any]) -> None:
    _stop_signal()
    lifecycle.restart_worker(before=lambda: pytest.fail("nothing runs"))
    assert at_exit["at_exit"] == [] and state.should_stop != 0


def test_a_stop_asked_during_the_restart_wins(at_exit: dict[str, Any]) -> None:
    lifecycle.restart_worker(before=lambda: pytest.fail("nothing runs"))
    _stop_signal()
    again: Callable[[], None] = at_exit["at_exit"][0]
    again()
    assert at_exit["execv"] == []
