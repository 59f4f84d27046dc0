"""What only the in-memory ticket store does itself: expiry on its clock, one lock per change.

Everything else it shares with the Redis store is in tests/integration/test_lease_contract.py.
"""

from __future__ import annotations

import threading

import pytest

from htap_sync.common.errors import TicketNotFound
from htap_sync.common.models import ErrorPayload, parse_request
from htap_sync.common.tickets.claims import Claim
from htap_sync.common.tickets.claims_memory import MemoryClaimStore
from htap_sync.common.tickets.store import Submitted
from htap_sync.common.tickets.store_memory import as_text
from tests.conftest import request_data
from tests.scripted_api import FakeClock

TTL_S = 100
ERROR = ErrorPayload(error_code="DBS.280001", error_msg="bad")


def _finished(store: MemoryClaimStore, *, failed: bool) -> tuple[str, str]:
    ticket, run, _ = store.submit(parse_request(request_data()))
    claim = store.begin(ticket, run, lease_s=10)
    assert isinstance(claim, Claim)
    done = store.fail(claim, ERROR) if failed else store.succeed(claim, "job", reconciled=False)
    assert done
    return ticket, run


def test_a_finished_ticket_expires_after_the_result_ttl_on_the_store_clock() -> None:
    """Readable until result_ttl_s has passed, then unknown; its name is free for a new ticket."""
    clock = FakeClock()
    store = MemoryClaimStore(result_ttl_s=TTL_S, clock=clock)
    ticket, run = _finished(store, failed=False)
    clock.advance(TTL_S - 1)
    assert store.get(ticket).job_id == "job"
    clock.advance(1)
    with pytest.raises(TicketNotFound):
        store.get(ticket)
    assert store.begin(ticket, run, lease_s=10) == "missing"
    assert store.submit(parse_request(request_data()))[2] is Submitted.QUEUED


def test_an_expired_failure_leaves_the_failed_index() -> None:
    """failed() forgets a failure once its result expired."""
    clock = FakeClock()
    store = MemoryClaimStore(result_ttl_s=TTL_S, clock=clock)
    ticket, _ = _finished(store, failed=True)
    assert [s.ticket for s in store.failed()] == [ticket]
    clock.advance(TTL_S)
    assert store.failed() == []


def test_one_of_many_concurrent_deliveries_gets_the_claim() -> None:
    """Threads racing to claim one ticket: exactly one is granted, the others find it busy."""
    store = MemoryClaimStore(result_ttl_s=TTL_S, clock=FakeClock())
    ticket, run, _ = store.submit(parse_request(request_data()))
    start = threading.Barrier(8)
    answers: list[Claim | str] = []

    def deliver() -> None:
        start.wait()
        answers.append(store.begin(ticket, run, lease_s=10))

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a if isinstance(a, str) else "claim" for a in answers) == ["busy"] * 7 + ["claim"]


@pytest.mark.parametrize("value", [True, None, 1.5j])
def test_a_field_value_redis_would_refuse_is_refused(value: object) -> None:
    """Only text and numbers are kept, as redis-py allows; the error names the type."""
    with pytest.raises(TypeError, match=type(value).__name__):
        as_text(value)
