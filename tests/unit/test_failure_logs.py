"""Failures are loud: a ticket that failed for good is logged at WARNING with its ticket, task
and error (a delivery that succeeded or waits stays at INFO)."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest

from htap_sync.common.models import ErrorPayload, parse_request
from htap_sync.common.settings import load_settings
from htap_sync.common.tickets.claims import Claim
from htap_sync.common.tickets.claims_memory import MemoryClaimStore
from htap_sync.worker.delivery.settle import Outcome
from htap_sync.worker.verdicts import TicketFailed, settle
from tests.conftest import request_data

SETTINGS = load_settings(env_file=None)


class FakeRuntime:
    """The one collaborator settle() reads: the ticket store."""

    def __init__(self, store: MemoryClaimStore) -> None:
        self.store = store

    def get(self) -> SimpleNamespace:
        return SimpleNamespace(store=self.store)


def runtime_on(store: MemoryClaimStore) -> Any:
    """A runtime whose store is ``store`` (typed loosely: settle() reads only that)."""
    return FakeRuntime(store)


def _failed_ticket(store: MemoryClaimStore) -> tuple[str, str, str]:
    request = parse_request(request_data(task_name="loud_1"))
    ticket, run, _ = store.submit(request)
    claim = store.begin(ticket, run, lease_s=SETTINGS.lease_s)
    assert isinstance(claim, Claim)
    error = ErrorPayload(http_status=400, error_code="DBS.200022", error_msg="Instance not found.")
    store.fail(claim, error)
    return ticket, run, f"{request.instance_id}/{request.task_name}"


def test_a_ticket_failed_for_good_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    """The delivery's line is a WARNING naming the ticket, its task and the API's error."""
    store = MemoryClaimStore(result_ttl_s=60, watch_s=300)
    ticket, run, task = _failed_ticket(store)
    with caplog.at_level(logging.INFO, logger="htap_sync.worker"), pytest.raises(TicketFailed):
        settle(
            ticket,
            run,
            Outcome("finished", reason="Rejected"),
            parts=(runtime := runtime_on(store)).get(),
            runtime=runtime,
        )
    (record,) = [r for r in caplog.records if getattr(r, "ticket", None) == ticket]
    assert record.levelno == logging.WARNING
    assert task in record.getMessage()
    fields = record.__dict__
    assert fields["task"] == task and fields["reason"] == "Rejected"
    assert (fields["http_status"], fields["error_code"]) == (400, "DBS.200022")
    assert fields["error_msg"] == "Instance not found."


def test_a_delivery_that_waits_stays_at_info(caplog: pytest.LogCaptureFixture) -> None:
    """A wait (or a retry, a success) is no failure: INFO, no task or error fields."""
    store = MemoryClaimStore(result_ttl_s=60, watch_s=300)
    request = parse_request(request_data(task_name="quiet_1"))
    ticket, run, _ = store.submit(request)
    with caplog.at_level(logging.INFO, logger="htap_sync.worker"):
        kind = settle(
            ticket,
            run,
            Outcome("waiting", 2.0, "rate"),
            parts=(runtime := runtime_on(store)).get(),
            runtime=runtime,
        )
    assert kind == "waiting"
    (record,) = [r for r in caplog.records if getattr(r, "ticket", None) == ticket]
    assert record.levelno == logging.INFO and "task" not in record.__dict__
