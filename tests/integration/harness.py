"""Helpers of the integration tests (fixtures live in conftest.py)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import pytest

from htap_sync.common.models import TicketStatus
from htap_sync.common.settings import Settings
from htap_sync.devstack import Service
from htap_sync.producer.api import Producer

TOKEN = "integration-test-token"


def child_env(settings: Settings | None, **extra: str) -> dict[str, str]:
    """The environment of a child process: ours without any HTAP_SYNC_*, then ``settings``
    as HTAP_SYNC_* variables, then ``extra`` (already-named variables)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HTAP_SYNC_")}
    if settings is not None:
        env.update(settings.environ())
    env.update(extra)
    return env


def wait_for(
    producer: Producer,
    tickets: Sequence[str],
    *,
    timeout_s: float = 60,
    workers: Sequence[Service] = (),
) -> dict[str, TicketStatus]:
    """Poll until the tickets finish; fail at once, with its log, if a worker process died."""

    def check_workers(_: object) -> None:
        for w in workers:
            if not w.alive():
                pytest.fail(f"{w.name} died:\n{w.log_tail()}")

    statuses = producer.wait(tickets, timeout_s=timeout_s, poll_s=0.05, on_poll=check_workers)
    unfinished = [t for t, s in statuses.items() if not s.state.terminal]
    if unfinished:
        logs = "\n".join(w.log_tail() for w in workers)
        pytest.fail(f"{len(unfinished)} tickets unfinished after {timeout_s} s:\n{logs}")
    return statuses
