"""The batched path on real parts: bulk work travels HTAP_SYNC_BATCH_SIZE tickets to a message,
each ticket is still created exactly once, and a batch whose worker is SIGKILLed mid-way is
delivered again without creating anything twice."""

from __future__ import annotations

import json
from typing import Any

import pytest

from htap_sync.common.fair_feed import tenant_queue
from htap_sync.common.keys import Keys
from htap_sync.common.models import TicketState
from htap_sync.common.settings import Settings
from htap_sync.devstack import wait_until
from htap_sync.producer.api import Producer
from htap_sync.simulator import SimulatorConfig, SimulatorServer
from tests.conftest import request_data
from tests.integration.conftest import WorkerFactory
from tests.integration.harness import TOKEN, wait_for
from tests.integration.test_faults import FAST_FAULTS, _assert_each_created_once


def _queued_items(producer: Producer, settings: Settings) -> list[list[Any]]:
    """The items of every batch message waiting in the queue, as a worker would read them."""
    # Bulk work waits in its tenant's queue (its project's), then the bulk lane's.
    waiting = tenant_queue(settings, request_data()["project_id"])
    raw = producer._redis.lrange(Keys(settings.key_prefix).queue(waiting), 0, -1)
    items: list[list[Any]] = []
    for text in reversed(raw):  # LPUSH: the oldest is last
        envelope = json.loads(text)
        assert envelope["headers"]["task"] == "htap_sync.create_replications"
        assert "body_encoding" not in envelope["properties"]
        _, kwargs, _ = json.loads(envelope["body"])
        items.extend(kwargs["items"])
    return items


def test_bulk_groups_tickets_and_queues_only_what_it_recorded(
    producer: Producer, settings: Settings
) -> None:
    """40 new requests, a repeat of one, a conflicting one and a bad one: 3 messages (16, 16,
    8 tickets) in submission order; the duplicate and the conflict queue nothing; a second
    identical submission queues no message at all."""
    requests: list[Any] = [request_data(task_name=f"grp_{i:02d}") for i in range(40)]
    requests.insert(5, dict(requests[0]))  # the same request again: a duplicate
    requests.insert(9, request_data(task_name="grp_01", target_database="other"))  # conflict
    requests.insert(20, request_data(task_name="no spaces allowed"))
    results = list(producer.enqueue_many(requests))
    assert [r.status for r in results].count("queued") == 40
    assert [results[5].status, results[9].status, results[20].status] == [
        "duplicate",
        "conflict",
        "invalid",
    ]
    assert producer.queue_depth() == 3
    items = _queued_items(producer, settings)
    queued = [r for r in results if r.status == "queued"]
    assert [(ticket, req) for ticket, _, req in items] == [
        (r.ticket, r.request.model_dump(exclude_none=True)) for r in queued if r.request is not None
    ]
    runs = {item[0]: item[1] for item in items}
    assert len(runs) == 40  # each ticket once, with the run its ticket recorded
    assert all(producer.store.due_at(ticket, run) is not None for ticket, run in runs.items())
    again = list(producer.enqueue_many(requests))
    assert {r.status for r in again} == {"duplicate", "conflict", "invalid"}
    assert producer.queue_depth() == 3


def test_a_batched_bulk_creates_each_task_once(
    producer: Producer, simulator: SimulatorServer, start_worker: WorkerFactory
) -> None:
    """300 requests as 19 batch messages through two workers: every ticket succeeds, each
    task is created once, the queue ends empty."""
    results = list(
        producer.enqueue_many(request_data(task_name=f"bat_{i:03d}") for i in range(300))
    )
    assert producer.queue_depth() == 19
    tickets = [r.ticket for r in results if r.ticket is not None]
    workers = [start_worker(concurrency=2), start_worker(concurrency=2)]
    statuses = wait_for(producer, tickets, timeout_s=120, workers=workers)
    assert {s.state for s in statuses.values()} == {TicketState.SUCCEEDED}
    _assert_each_created_once(simulator, statuses)
    assert simulator.state.created == 300
    assert producer.queue_depth() == 0


class TestRedeliveredBatch:
    """A worker SIGKILLed in the middle of its batches; the batches come back to another."""

    @pytest.fixture
    def sim_config(self) -> SimulatorConfig:
        """400 ms per call: a batch is still in flight when its worker is killed."""
        return SimulatorConfig(token=TOKEN, seed=11, latency_ms=400)

    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        """A visibility timeout of seconds, so the killed worker's batches return soon."""
        return FAST_FAULTS

    @pytest.mark.timeout(180)
    def test_a_batch_delivered_again_creates_nothing_twice(
        self, producer: Producer, simulator: SimulatorServer, start_worker: WorkerFactory
    ) -> None:
        """The killed worker's batches return after the visibility timeout: their finished
        tickets are skipped, those left in doubt are reconciled, nothing is created twice."""
        results = list(
            producer.enqueue_many(request_data(task_name=f"kill_{i:03d}") for i in range(96))
        )
        tickets = [r.ticket for r in results if r.ticket is not None]
        first = start_worker(concurrency=2)
        wait_until(lambda: simulator.state.created >= 8, timeout_s=60, what="8 created")
        first.kill()  # mid-batch: its other tickets are claimed, some in doubt
        assert simulator.state.created < 96
        second = start_worker(concurrency=2)
        statuses = wait_for(producer, tickets, timeout_s=150, workers=[second])
        assert {s.state for s in statuses.values()} == {TicketState.SUCCEEDED}
        _assert_each_created_once(simulator, statuses)
        assert simulator.state.created == 96
        assert simulator.state.create_answers().get(409, 0) == 0


def test_backpressure_counts_batch_messages(settings: Settings) -> None:
    """HTAP_SYNC_MAX_QUEUE_DEPTH counts messages: at 2, enqueue_many queues 2 messages of 16
    tickets at a time and waits (an injected sleep drains the queue) before each next pair."""
    limited = settings.model_copy(update={"max_queue_depth": 2})
    # Bulk messages wait in their tenant's queue, which backpressure counts with the lanes'.
    queue = Keys(limited.key_prefix).queue(tenant_queue(limited, request_data()["project_id"]))
    seen: list[int] = []
    producer = Producer(limited)

    def drain(_: float) -> None:
        seen.append(int(producer._redis.llen(queue)))
        producer._redis.delete(queue)

    producer._sleep = drain
    try:
        results = list(
            producer.enqueue_many(request_data(task_name=f"bp_{i:03d}") for i in range(100))
        )
        assert [r.status for r in results] == ["queued"] * 100
        assert seen == [2, 2, 2]  # 32 tickets a round: 32, 32, 32, then 4
        assert _queued_items(producer, limited) and producer.queue_depth() == 1
    finally:
        producer.close()
