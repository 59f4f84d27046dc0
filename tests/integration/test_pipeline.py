"""The whole pipeline on real parts: producer -> Redis -> worker process -> simulator -> ticket."""

from __future__ import annotations

import pytest

from htap_sync.common.celery_app import CREATE_REPLICATION, make_celery
from htap_sync.common.errors import RequestInvalid, TicketConflict, TicketNotFound
from htap_sync.common.models import TicketState, parse_request
from htap_sync.common.settings import Settings
from htap_sync.common.tickets.store import Submitted
from htap_sync.producer.api import Producer
from htap_sync.simulator import SimulatorConfig, SimulatorServer
from tests.conftest import request_data
from tests.integration.conftest import WorkerFactory
from tests.integration.harness import TOKEN, wait_for

UNKNOWN_INSTANCE = "ffffffffffffffffffffffffffffffffin17"


@pytest.fixture
def sim_config() -> SimulatorConfig:
    """A simulator that knows no instance called UNKNOWN_INSTANCE."""
    return SimulatorConfig(token=TOKEN, seed=7, unknown_instances=frozenset({UNKNOWN_INSTANCE}))


def test_requests_succeed_with_the_simulators_job_ids(
    producer: Producer, simulator: SimulatorServer, start_worker: WorkerFactory
) -> None:
    """Queued requests become tasks in the simulator, once each, and tickets carry their job ids."""
    requests = [request_data(task_name=f"sync_db_{i:03d}") for i in range(30)]
    receipts = [producer.enqueue(r) for r in requests]
    assert {r.outcome for r in receipts} == {Submitted.QUEUED}
    assert producer.status(receipts[0].ticket).state is TicketState.QUEUED

    worker = start_worker(concurrency=4)
    statuses = wait_for(producer, [r.ticket for r in receipts], workers=[worker])

    tasks = {
        t.task_name: t
        for t in simulator.state.tasks(requests[0]["project_id"], requests[0]["instance_id"])
    }
    for receipt in receipts:
        status = statuses[receipt.ticket]
        name = receipt.request.task_name
        assert status.state is TicketState.SUCCEEDED, status
        assert status.job_id == tasks[name].job_id
        assert status.attempts == 1
        assert status.error is None
        assert status.request == receipt.request
        assert status.updated_at >= status.created_at
        assert (
            simulator.state.creates_for(status.request.project_id, status.request.instance_id, name)
            == 1
        )
    assert simulator.state.created == 30


def test_permanent_error_fails_once_with_the_error_payload(
    producer: Producer, simulator: SimulatorServer, start_worker: WorkerFactory
) -> None:
    """A 400 from the API fails the ticket at once with http_status, error_code and request_id."""
    receipt = producer.enqueue(request_data(instance_id=UNKNOWN_INSTANCE))
    worker = start_worker(concurrency=1)
    status = wait_for(producer, [receipt.ticket], workers=[worker])[receipt.ticket]
    assert status.state is TicketState.FAILED
    assert status.error is not None
    assert status.error.http_status == 400
    assert status.error.error_code == "DBS.200022"
    assert status.error.error_msg == "Instance not found."
    assert status.error.request_id
    assert status.job_id is None
    assert status.attempts == 1
    assert simulator.state.create_calls == 1  # permanent: sent exactly once


def test_invalid_request_is_refused_before_the_queue(
    producer: Producer, settings: Settings, simulator: SimulatorServer
) -> None:
    """An invalid request raises with the field named, and no ticket or message exists."""
    bad = request_data(task_name="no spaces allowed")
    with pytest.raises(RequestInvalid) as info:
        producer.enqueue(bad)
    assert [e["field"] for e in info.value.errors] == ["task_name"]
    redis = producer.store.redis
    assert redis.keys(f"{settings.key_prefix}*") == []  # no ticket, no queue, nothing
    assert simulator.state.create_calls == 0


def test_worker_validates_messages_again(
    producer: Producer,
    settings: Settings,
    simulator: SimulatorServer,
    start_worker: WorkerFactory,
) -> None:
    """A tampered message is failed by the worker and never reaches the API."""
    good = parse_request(request_data())
    ticket, run, _ = producer.store.submit(good)
    tampered = {**good.model_dump(exclude_none=True), "source_database": "x; DROP"}
    app = make_celery(settings)
    app.send_task(
        CREATE_REPLICATION,
        kwargs={"ticket": ticket, "run": run, "request": tampered},
        queue=settings.queue,
    )
    app.close()
    worker = start_worker(concurrency=1)
    status = wait_for(producer, [ticket], workers=[worker])[ticket]
    assert status.state is TicketState.FAILED
    assert status.error is not None
    assert status.error.error_code == "HTAP_SYNC.INVALID"
    assert "source_database" in status.error.error_msg
    assert simulator.state.create_calls == 0


def test_pickle_messages_are_refused(
    producer: Producer,
    settings: Settings,
    simulator: SimulatorServer,
    start_worker: WorkerFactory,
) -> None:
    """A pickled message is never executed; JSON messages queued after it still run."""
    pickled = parse_request(request_data(task_name="pickled_one"))
    ticket, run, _ = producer.store.submit(pickled)
    app = make_celery(settings)
    app.send_task(
        CREATE_REPLICATION,
        kwargs={"ticket": ticket, "run": run, "request": pickled.model_dump(exclude_none=True)},
        queue=settings.queue,
        serializer="pickle",
    )
    app.close()
    after = producer.enqueue(request_data(task_name="json_one"))
    worker = start_worker(concurrency=1)
    assert wait_for(producer, [after.ticket], workers=[worker])[after.ticket].state == "succeeded"
    assert producer.status(ticket).state is TicketState.QUEUED
    assert simulator.state.create_calls == 1
    assert worker.alive()


def test_duplicates_conflicts_and_redrive(
    producer: Producer, simulator: SimulatorServer, start_worker: WorkerFactory
) -> None:
    """Same request: one ticket; same name, other request: conflict; a failed one: re-drive."""
    first = producer.enqueue(request_data())
    again = producer.enqueue(request_data())
    assert again.ticket == first.ticket
    assert again.outcome is Submitted.DUPLICATE
    with pytest.raises(TicketConflict) as conflict:
        producer.enqueue(request_data(target_database="other_db"))
    assert conflict.value.ticket == first.ticket
    assert conflict.value.state == "queued"

    doomed = producer.enqueue(request_data(instance_id=UNKNOWN_INSTANCE))
    worker = start_worker(concurrency=2)
    statuses = wait_for(producer, [first.ticket, doomed.ticket], workers=[worker])
    assert statuses[first.ticket].state is TicketState.SUCCEEDED
    assert statuses[doomed.ticket].state is TicketState.FAILED

    # Succeeded: the same request is a duplicate (nothing queued), another one a conflict.
    assert producer.enqueue(request_data()).outcome is Submitted.DUPLICATE
    with pytest.raises(TicketConflict):
        producer.enqueue(request_data(target_database="other_db"))
    # Failed: it may be submitted again, and it runs again.
    redriven = producer.enqueue(request_data(instance_id=UNKNOWN_INSTANCE))
    assert redriven.outcome is Submitted.REDRIVEN
    assert redriven.ticket == doomed.ticket
    # (The running worker may take it at once: that it ran again shows in the create calls.)
    final = wait_for(producer, [doomed.ticket], workers=[worker])[doomed.ticket]
    assert final.state is TicketState.FAILED
    task = first.request
    assert simulator.state.creates_for(task.project_id, task.instance_id, task.task_name) == 1
    assert final.error is not None
    assert final.error.error_code == "DBS.200022"
    assert final.attempts == 1
    # first, doomed, doomed again: the refusal proved nothing was created, so no list call first
    assert simulator.state.create_calls == 3


def test_unknown_ticket_is_not_found(producer: Producer) -> None:
    """Looking up or waiting for a ticket nobody submitted says 'not found', not 'pending'."""
    with pytest.raises(TicketNotFound):
        producer.status("tk_" + "0" * 32)
    with pytest.raises(TicketNotFound):
        producer.wait(["tk_" + "0" * 32], timeout_s=5)
