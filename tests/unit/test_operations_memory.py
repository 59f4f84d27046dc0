"""Operation tickets (pause, resume, delete, modify) on the in-memory store, against the
simulator's app behind httpx.MockTransport: each call through the gate on its own API, done by
the live service's predicates, a rerun a no-op, a create on its way waited for."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from htap_sync.common.errors import RequestInvalid
from htap_sync.common.models import TicketState, parse_request
from htap_sync.common.operations import as_message, parse_operation
from htap_sync.common.tickets.ids import ticket_id
from htap_sync.worker.api.client import TaurusClient
from htap_sync.worker.delivery.operations import process_operation
from htap_sync.worker.delivery.start import Delivery, no_enroll
from htap_sync.worker.delivery.ticket import Outcome
from tests.conftest import request_data
from tests.unit.test_configured_memory import BASE_URL, Rig, rig_for
from tests.unit.test_models_selection import SELECTION


@pytest.fixture
def rig() -> Iterator[Rig]:
    """A simulator whose tasks sync at once and whose operation jobs end at once."""
    yield from rig_for()


def created(rig: Rig) -> dict[str, Any]:
    """A plain task created through its ticket; its request data."""
    payload = request_data()
    ticket, run, _ = rig.store.submit(parse_request(payload))
    assert rig.deliver(ticket, run, payload).reason == "created"
    return payload


def operate(
    rig: Rig, operation: str, payload: dict[str, Any], **extra: Any
) -> tuple[str, str, str]:
    """Submit an operation on the task of ``payload``: (ticket, run, outcome)."""
    op = parse_operation(
        {
            "operation": operation,
            "project_id": payload["project_id"],
            "instance_id": payload["instance_id"],
            "task_name": payload["task_name"],
            **extra,
        }
    )
    ticket, outcome, _ = rig.store.submit_operation(op, run="run-" + str(len(rig.api.seen)))
    return ticket, "run-" + str(len(rig.api.seen)), outcome


def deliver(rig: Rig, ticket: str, run: str, message: dict[str, Any] | None = None) -> Outcome:
    if message is None:
        message = as_message(parse_operation(_recorded(rig, ticket)))
    d = Delivery(
        rig.client,
        rig.store,
        rig.settings,
        random.Random(3),
        rig.gate,
        rig.clock,
        no_enroll,
        lambda: 0,
    )
    return process_operation(ticket, run, message, d)


def _recorded(rig: Rig, ticket: str) -> dict[str, Any]:
    return rig.store.get(ticket).request.model_dump(exclude_none=True)


def stage(rig: Rig, payload: dict[str, Any]) -> str | None:
    """The task's stage in the simulator's list (None: not listed)."""
    rows = rig.client.list_replications(payload["project_id"], payload["instance_id"])
    return next((r.stage for r in rows if r.task_name == payload["task_name"]), None)


def calls(rig: Rig, method: str, suffix: str) -> int:
    return sum(1 for seen in rig.api.seen if seen == (method, suffix))


def test_pause_is_sent_once_then_done_when_the_list_shows_paused(rig: Rig) -> None:
    """A pause looks, sends POST .../pause through the gate's pause bucket, keeps its job, and
    succeeds once the list shows stage Paused; its job id is on the ticket."""
    payload = created(rig)
    ticket, run, outcome = operate(rig, "pause", payload)
    assert outcome == "queued"
    assert deliver(rig, ticket, run) == Outcome("waiting", delay_s=10.0, reason="operation")
    assert calls(rig, "POST", "/pause") == 1 and "pause" in rig.gate.apis
    assert deliver(rig, ticket, run).reason == "created"
    status = rig.store.get(ticket)
    assert status.state is TicketState.SUCCEEDED and status.job_id
    assert not status.reconciled and calls(rig, "POST", "/pause") == 1
    assert (stage(rig, payload) or "").lower() == "paused"


def test_a_rerun_of_each_operation_is_a_no_op(rig: Rig) -> None:
    """Pause, resume and delete submitted again after they succeeded are queued again, look,
    find the predicate holding and send nothing (reconciled)."""
    payload = created(rig)
    for operation, method, suffix in (
        ("pause", "POST", "/pause"),
        ("resume", "POST", "/resume"),
        ("delete", "DELETE", "/"),
    ):
        ticket, run, _ = operate(rig, operation, payload)
        deliver(rig, ticket, run)
        assert deliver(rig, ticket, run).reason == "created", operation
        ticket, run, outcome = operate(rig, operation, payload)
        assert outcome == "redriven"
        assert deliver(rig, ticket, run).reason == "reconciled", operation
        assert calls(rig, method, suffix) == 1, operation
    assert stage(rig, payload) is None


def test_resume_is_done_at_incremental(rig: Rig) -> None:
    """A resume of a paused task is done when the list shows it Incremental (or Full)."""
    payload = created(rig)
    ticket, run, _ = operate(rig, "pause", payload)
    deliver(rig, ticket, run)
    deliver(rig, ticket, run)
    ticket, run, outcome = operate(rig, "resume", payload)
    assert outcome == "redriven"  # the task's one operation ticket, replaced
    deliver(rig, ticket, run)
    assert deliver(rig, ticket, run).reason == "created"
    assert (stage(rig, payload) or "").lower() in ("incremental", "full")


def test_an_operation_waits_for_the_create_on_its_way(rig: Rig) -> None:
    """While the task's create ticket is queued, the operation waits and calls nothing."""
    payload = request_data()
    create, create_run, _ = rig.store.submit(parse_request(payload))
    ticket, run, _ = operate(rig, "delete", payload)
    assert deliver(rig, ticket, run).reason == "create"
    assert rig.api.seen == []
    rig.deliver(create, create_run, payload)
    assert deliver(rig, ticket, run).reason == "operation"
    assert deliver(rig, ticket, run).reason == "created"
    assert stage(rig, payload) is None


def test_pause_of_a_task_not_listed_fails_and_delete_of_one_is_not_there(rig: Rig) -> None:
    """A pause of a task the list does not show fails naming why; a delete succeeds
    reconciled (nothing to remove), sending no DELETE."""
    payload = request_data(task_name="never_created")
    ticket, run, _ = operate(rig, "pause", payload)
    assert deliver(rig, ticket, run).reason == "HTAP_SYNC.NO_TASK"
    ticket, run, _ = operate(rig, "delete", payload)
    assert deliver(rig, ticket, run).reason == "reconciled"
    assert calls(rig, "DELETE", "/") == 0


def test_a_task_of_other_databases_is_left_alone(rig: Rig) -> None:
    """An operation naming its databases fails on a task of that name copying others."""
    payload = created(rig)
    ticket, run, _ = operate(rig, "delete", payload, source_database="someone_else")
    assert deliver(rig, ticket, run).reason == "HTAP_SYNC.NAME_TAKEN"
    assert calls(rig, "DELETE", "/") == 0 and stage(rig, payload) is not None


def test_modify_puts_the_change_then_is_done_when_its_job_completed(rig: Rig) -> None:
    """A modify sends PUT .../replication with the check body once, then reads its job until
    Completed; the same change again is a duplicate."""
    payload = {**request_data(), **SELECTION}
    ticket, run, _ = rig.store.submit(parse_request(payload))
    assert rig.deliver(ticket, run, payload).reason == "created"
    tables = {"repl_type": "exclude_tables", "repl_scope": "part", "tables": ["audit_log"]}
    change = {**payload, "table_repl_config": tables}
    ticket, run, _ = operate(rig, "modify", payload, change=change)
    assert deliver(rig, ticket, run).reason == "operation"
    assert calls(rig, "PUT", "/") == 1 and "modify" in rig.gate.apis
    assert deliver(rig, ticket, run).reason == "created"
    assert rig.store.get(ticket).job_id and "jobs" in rig.gate.apis
    config = rig.client.get_configuration(
        payload["project_id"], payload["instance_id"], payload["task_name"]
    )
    assert config is not None and config["table_repl_config"] == tables
    assert operate(rig, "modify", payload, change=change)[2] == "duplicate"


def scripted(answers: dict[tuple[str, str], httpx.Response]) -> TaurusClient:
    """A client whose calls get the answer of their method and path's tail."""

    def handler(request: httpx.Request) -> httpx.Response:
        tail = request.url.path.rsplit("/", 1)[-1]
        return answers[(request.method, tail)]

    return TaurusClient(httpx.Client(base_url=BASE_URL, transport=httpx.MockTransport(handler)))


ROW = {"task_name": request_data()["task_name"], "source_database": "src_db", "stage": "Full"}


def test_already_deleted_is_success_and_in_progress_is_retried(rig: Rig) -> None:
    """DELETE answered 400 DBS.05000091 is success (it was not there); POST pause answered
    409 DBS.200019 (another operation in progress) is retried with backoff."""
    listed = httpx.Response(200, json={"total_count": "1", "replications": [ROW]})
    gone = httpx.Response(400, json={"error_code": "DBS.05000091", "error_msg": "not found"})
    busy = httpx.Response(409, json={"error_code": "DBS.200019", "error_msg": "in progress"})
    rig.client = scripted(
        {("GET", "replication"): listed, ("DELETE", "replication"): gone, ("POST", "pause"): busy}
    )
    payload = request_data()
    ticket, run, _ = operate(rig, "delete", payload)
    assert deliver(rig, ticket, run).reason == "reconciled"
    ticket, run, _ = operate(rig, "pause", payload)
    end = deliver(rig, ticket, run)
    assert (end.kind, end.reason) == ("retry", "InProgress")
    assert rig.store.get(ticket).state is TicketState.RETRYING


def test_bad_operations_name_their_field() -> None:
    """An unknown operation, a modify without its change, a change of another task, a change
    on a pause: each error names its field."""
    base = {k: request_data()[k] for k in ("project_id", "instance_id", "task_name")}
    cases = [
        ({**base, "operation": "stop"}, "operation"),
        ({**base, "operation": "modify"}, "change"),
        ({**base, "operation": "pause", "change": {}}, "change"),
        ({**base, "operation": "pause", "task_name": "x"}, "task_name"),
        (
            {
                **base,
                "operation": "modify",
                "change": {**request_data(task_name="other"), **SELECTION},
            },
            "change.task_name",
        ),
        ({**base, "operation": "modify", "change": request_data()}, "change"),
    ]
    for data, field in cases:
        with pytest.raises(RequestInvalid) as caught:
            parse_operation(data)
        assert caught.value.errors[0]["field"] == field, data


def test_an_operation_ticket_is_apart_from_the_create_ticket() -> None:
    """The operation ticket of a task is not its create ticket, and has the same shape."""
    data = request_data()
    op = parse_operation(
        {"operation": "pause", **{k: data[k] for k in ("project_id", "instance_id", "task_name")}}
    )
    from htap_sync.common.operations import ticket_of

    create = ticket_id(data["project_id"], data["instance_id"], data["task_name"])
    assert (
        ticket_of(op) != create
        and ticket_of(op).startswith("tk_")
        and len(create) == len(ticket_of(op))
    )


def test_another_operation_in_flight_is_a_conflict(rig: Rig) -> None:
    """While a task's pause is in flight, a resume of it is a conflict and the same pause a
    duplicate; once the pause ended, the resume replaces it."""
    payload = created(rig)
    ticket, run, _ = operate(rig, "pause", payload)
    assert operate(rig, "resume", payload)[2] == "conflict"
    assert operate(rig, "pause", payload)[2] == "duplicate"
    deliver(rig, ticket, run)
    deliver(rig, ticket, run)
    assert operate(rig, "resume", payload)[2] == "redriven"


def _job_answers(status: str) -> dict[tuple[str, str], httpx.Response]:
    listed = httpx.Response(200, json={"total_count": "1", "replications": [ROW]})
    job = {"job": {"id": "j1", "status": status, "fail_reason": "disk full"}}
    return {
        ("GET", "replication"): listed,
        ("POST", "pause"): httpx.Response(200, json={"job_id": "j1"}),
        ("GET", "jobs"): httpx.Response(200, json=job),
    }


def test_a_failed_job_fails_the_operation_with_its_reason(rig: Rig) -> None:
    """A pause whose job ends Failed fails its ticket with the job's fail_reason."""
    rig.client = scripted(_job_answers("Failed"))
    ticket, run, _ = operate(rig, "pause", request_data())
    assert deliver(rig, ticket, run).reason == "operation"
    assert deliver(rig, ticket, run).reason == "HTAP_SYNC.JOB_FAILED"
    error = rig.store.get(ticket).error
    assert error is not None and "disk full" in error.error_msg


def test_an_operation_not_done_by_the_deadline_fails(rig: Rig) -> None:
    """A pause accepted whose task never shows Paused gives up at the delivery deadline,
    having sent its call once."""
    rig.client = scripted(_job_answers("Running"))
    ticket, run, _ = operate(rig, "pause", request_data())
    assert deliver(rig, ticket, run).reason == "operation"
    assert deliver(rig, ticket, run).reason == "operation"  # still running: look later
    rig.clock.advance(rig.settings.delivery.deadline_s + 1)
    assert deliver(rig, ticket, run).reason == "HTAP_SYNC.EXHAUSTED"
    assert rig.store.get(ticket).attempts == 1


def test_a_ticket_reads_back_its_kind() -> None:
    """A creation's recorded text reads back as a creation, even with "operation" inside a
    value; an operation's as an operation (with its change)."""
    from htap_sync.common.tickets.store import _request_of

    creation = parse_request({**request_data(), **SELECTION})
    assert _request_of(creation.fingerprint()) == creation
    sneaky = {"tables_configs": [{"table_name": "t", "table_config": '"operation":"pause"'}]}
    tricky = parse_request({**request_data(), **sneaky})
    assert _request_of(tricky.fingerprint()) == tricky
    base = {k: request_data()[k] for k in ("project_id", "instance_id", "task_name")}
    modify = parse_operation(
        {**base, "operation": "modify", "change": {**request_data(), **SELECTION}}
    )
    assert _request_of(modify.fingerprint()) == modify


class Closed:
    """A gate that holds back every call of one API (``reason``: rate or breaker)."""

    def __init__(self, api: str, reason: str) -> None:
        self.api, self.reason = api, reason

    def before_call(
        self, project_id: str, api: str, lane: str | None = None, tenant: str | None = None
    ) -> None:
        from htap_sync.common.limits.gate import MustWait

        if api == self.api:
            raise MustWait(7.0, self.reason)  # type: ignore[arg-type]

    def after_call(self, project_id: str, api: str, error: object) -> None:
        """Nothing to record."""


@pytest.mark.parametrize("reason", ["rate", "breaker"])
def test_a_closed_gate_holds_the_operation_back_without_an_attempt(rig: Rig, reason: str) -> None:
    """No token for pause calls (or an open breaker): the ticket waits, sends nothing, and no
    attempt is counted."""
    payload = created(rig)
    rig.gate = Closed("pause", reason)  # type: ignore[assignment]
    ticket, run, _ = operate(rig, "pause", payload)
    assert deliver(rig, ticket, run) == Outcome("waiting", delay_s=7.0, reason=reason)
    assert calls(rig, "POST", "/pause") == 0 and rig.store.get(ticket).attempts == 0


def test_a_lost_answer_is_reconciled_by_the_list(rig: Rig) -> None:
    """A pause whose answer was lost (read timeout after sending) retries in doubt; the next
    delivery looks first, finds the task Paused, and succeeds without sending again."""
    listings = [dict(ROW), {**ROW, "stage": "Paused"}]
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            sent.append(request.url.path)
            raise httpx.ReadTimeout("lost", request=request)
        row = listings.pop(0) if len(listings) > 1 else listings[0]
        return httpx.Response(200, json={"total_count": "1", "replications": [row]})

    rig.client = TaurusClient(
        httpx.Client(base_url=BASE_URL, transport=httpx.MockTransport(handler))
    )
    ticket, run, _ = operate(rig, "pause", request_data())
    end = deliver(rig, ticket, run)
    assert (end.kind, end.reason, len(sent)) == ("retry", "Ambiguous", 1)
    assert deliver(rig, ticket, run).reason == "created"
    status = rig.store.get(ticket)
    assert status.state is TicketState.SUCCEEDED and not status.reconciled and len(sent) == 1


def test_any_input_is_an_operation_or_a_field_precise_refusal() -> None:
    """Whatever JSON-like data comes in, parse_operation returns an operation or raises
    RequestInvalid whose every error names a field (never another exception)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    base = {k: request_data()[k] for k in ("project_id", "instance_id", "task_name")}
    leaves = st.none() | st.booleans() | st.integers() | st.text(max_size=40)
    values = st.recursive(
        leaves,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
        ),
        max_leaves=8,
    )
    keys = st.sampled_from(["operation", "project_id", "instance_id", "task_name", "change", "x"])
    ops = st.sampled_from(["pause", "resume", "delete", "modify", "stop"])

    @settings(max_examples=200, deadline=None)
    @given(st.dictionaries(keys, values, max_size=4), ops)
    def check(extra: dict[str, Any], operation: str) -> None:
        try:
            parse_operation({**base, "operation": operation, **extra})
        except RequestInvalid as exc:
            assert exc.errors and all(e["field"] and e["message"] for e in exc.errors)

    check()
