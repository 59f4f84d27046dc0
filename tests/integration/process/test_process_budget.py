"""process_ticket on a real Redis: answers that prove nothing was created, and the
attempt budget."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import httpx
import pytest

from htap_sync.common.models import ErrorPayload, TicketState, parse_request
from htap_sync.common.tickets.claims import Claim
from htap_sync.common.tickets.store import Submitted
from htap_sync.worker.delivery.ticket import Outcome
from tests.integration.process.worker_rig import Rig, assert_result_ttl, first_jitter_s
from tests.scripted_api import Answer, FakeClock, created, refused

# -- answers that prove nothing was created ------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "reason", "error", "retry_after_s"),
    [
        pytest.param(
            lambda: refused(429, "APIGW.0308", "Too many requests", **{"Retry-After": "7"}),
            "Throttled",
            ErrorPayload(
                http_status=429,
                error_code="APIGW.0308",
                error_msg="Too many requests",
                request_id="req-err",
            ),
            7.0,
            id="429-retry-after",
        ),
        pytest.param(
            lambda: refused(429, "APIGW.0308", "Too many requests", **{"Retry-After": "3600"}),
            "Throttled",
            ErrorPayload(
                http_status=429,
                error_code="APIGW.0308",
                error_msg="Too many requests",
                request_id="req-err",
            ),
            30.0,  # capped at backoff_max_s
            id="429-retry-after-capped",
        ),
        pytest.param(
            lambda: refused(409, "DBS.200011", "Another operation is in progress."),
            "InProgress",
            ErrorPayload(
                http_status=409,
                error_code="DBS.200011",
                error_msg="Another operation is in progress.",
                request_id="req-err",
            ),
            None,
            id="409-in-progress",
        ),
        pytest.param(
            lambda: httpx.ConnectError,
            "TransportError",
            ErrorPayload(
                error_code=None,
                error_msg="not sent: ConnectError: scripted transport failure",
            ),
            None,
            id="connection-refused",
        ),
    ],
)
def test_retryable_answers_retry_without_doubt_and_post_again_unlisted(
    rig: Rig,
    answer: Callable[[], Answer],
    reason: str,
    error: ErrorPayload,
    retry_after_s: float | None,
) -> None:
    """429, 409-in-progress and refused connections retry not in doubt, honouring Retry-After."""
    msg = rig.submit()
    rig.api.answer_creates(answer())

    delay_s = first_jitter_s(rig.settings) if retry_after_s is None else retry_after_s
    assert rig.deliver(msg) == Outcome("retry", delay_s=delay_s, reason=reason)
    spent = 0 if reason == "Throttled" else 1  # waiting out throttling costs no attempt
    status = rig.status(msg)
    assert (status.state, status.error, status.attempts) == (TicketState.RETRYING, error, spent)
    assert not rig.in_doubt(msg)
    # The wait is in the durable delayed set, due after the delay.
    due = rig.redis.zscore(rig.store.delayed_key, f"{msg.ticket}:{msg.run}")
    assert due is not None and due == pytest.approx(time.time() + delay_s, abs=5)

    rig.api.answer_creates(created("job-7"))
    assert rig.deliver(msg) == Outcome("finished", reason="created")
    assert rig.api.methods == ["POST", "POST"]  # no list call in between
    assert (rig.status(msg).job_id, rig.status(msg).attempts) == ("job-7", spent + 1)


def test_a_permanent_refusal_fails_at_once_and_a_redrive_posts_unlisted(rig: Rig) -> None:
    """A 400 fails with its payload and no doubt; a re-drive posts again without a list call."""
    msg = rig.submit()
    rig.api.answer_creates(refused(400, "DBS.200022", "Instance not found.", request_id="req-400"))

    assert rig.deliver(msg) == Outcome("finished", reason="Rejected")
    status = rig.status(msg)
    assert status.state is TicketState.FAILED
    assert status.error == ErrorPayload(
        http_status=400,
        error_code="DBS.200022",
        error_msg="Instance not found.",
        request_id="req-400",
    )
    assert (status.attempts, status.job_id) == (1, None)
    assert not rig.in_doubt(msg)
    assert_result_ttl(rig, msg)

    ticket, run, what = rig.store.submit(parse_request(msg.payload))
    assert (ticket, what) == (msg.ticket, Submitted.REDRIVEN)
    assert run != msg.run
    status = rig.status(msg)
    assert (status.state, status.attempts, status.error) == (TicketState.QUEUED, 0, None)
    assert rig.ttl_s(msg) == -1
    # The failed run's leftovers can neither act nor write.
    assert rig.deliver(msg) == Outcome("skipped", reason="stale")
    assert not rig.store.fail(Claim(msg.ticket, msg.run), ErrorPayload(error_msg="late"))

    rig.api.answer_creates(created("job-8"))
    assert rig.deliver(replace(msg, run=run)) == Outcome("finished", reason="created")
    assert rig.api.methods == ["POST", "POST"]
    assert (rig.status(msg).state, rig.status(msg).attempts) == (TicketState.SUCCEEDED, 1)


# -- the attempt budget --------------------------------------------------------------------------


def test_5xx_every_time_fails_after_max_attempts_and_one_last_look(rig: Rig) -> None:
    """With 503 on every create: 3 POSTs, each retry listing first, then failure without a POST."""
    msg = rig.submit()
    rig.api.answer_creates(*(refused(503, "DBS.108000", "Internal server error.") for _ in "123"))

    outcomes = [rig.deliver(msg) for _ in range(4)]
    assert [o.kind for o in outcomes] == ["retry", "retry", "retry", "finished"]
    assert outcomes[-1].reason == "budget exhausted"
    assert rig.api.methods == ["POST", "GET", "POST", "GET", "POST", "GET"]
    status = rig.status(msg)
    assert status.state is TicketState.FAILED
    assert status.error is not None
    assert status.error.error_code == "HTAP_SYNC.EXHAUSTED"
    assert status.attempts == 3
    assert [(a.call, a.outcome) for a in status.history] == [("create", "error")] * 3 + [
        ("list", "absent")
    ]
    assert_result_ttl(rig, msg)
    # The last look proved the task absent: a re-drive need not look again.
    assert not rig.in_doubt(msg)

    assert rig.deliver(msg) == Outcome("skipped", reason="done")
    assert len(rig.api.seen) == 6


def test_past_the_deadline_a_ticket_in_doubt_looks_once_more_then_fails(
    rig: Rig, clock: FakeClock
) -> None:
    """Past the deadline, a ticket in doubt is listed (reconciled if found), never posted."""
    rig.use_clock(clock)
    found, absent = rig.submit(task_name="found_late"), rig.submit(task_name="absent_late")
    rig.api.answer_creates(*(refused(502, "DBS.108000", "Bad gateway") for _ in "12"))
    assert rig.deliver(found).kind == "retry"
    assert rig.deliver(absent).kind == "retry"
    clock.advance(rig.settings.delivery.deadline_s + 1)
    rig.api.show(found.payload)
    assert rig.deliver(found) == Outcome("finished", reason="reconciled")
    assert rig.deliver(absent) == Outcome("finished", reason="budget exhausted")
    assert rig.api.methods == ["POST", "POST", "GET", "GET"]
    status = rig.status(absent)
    assert status.error is not None and status.error.error_code == "HTAP_SYNC.EXHAUSTED"


def test_redriving_a_ticket_that_failed_in_doubt_lists_first(rig: Rig) -> None:
    """A ticket that failed while its task may exist is looked up before any new POST."""
    msg = rig.submit()
    rig.api.answer_creates(refused(503, "DBS.108000", "Internal server error."))
    # The list call is refused for good (say, the IAM policy lacks the list action).
    rig.api.answer_lists(refused(403, "DBS.200001", "No permission."))
    assert rig.deliver(msg).kind == "retry"
    assert rig.deliver(msg) == Outcome("finished", reason="Rejected")
    assert rig.status(msg).state is TicketState.FAILED
    assert rig.in_doubt(msg)

    _, run, what = rig.store.submit(parse_request(msg.payload))
    assert what is Submitted.REDRIVEN
    rig.api.show(msg.payload)  # the 503 did create it after all
    assert rig.deliver(replace(msg, run=run)) == Outcome("finished", reason="reconciled")
    assert rig.api.methods == ["POST", "GET", "GET"]
    assert rig.status(msg).reconciled


def test_throttling_costs_no_attempt_and_ends_only_at_the_deadline(
    rig: Rig, clock: FakeClock
) -> None:
    """429s are waited out without spending attempts or listing; the deadline ends them."""
    rig.use_clock(clock)
    msg = rig.submit()
    throttled = [refused(429, "APIGW.0308", "Too many requests") for _ in range(5)]
    rig.api.answer_creates(*throttled)

    outcomes = [rig.deliver(msg) for _ in range(4)]
    assert [o.kind for o in outcomes] == ["retry"] * 4  # more than max_attempts (3)
    assert rig.status(msg).attempts == 0
    clock.advance(rig.settings.delivery.deadline_s + 1)
    assert rig.deliver(msg) == Outcome("finished", reason="budget exhausted")
    assert rig.api.methods == ["POST"] * 5
    status = rig.status(msg)
    assert status.state is TicketState.FAILED
    assert status.error is not None
    assert (status.error.http_status, status.error.error_code) == (429, "APIGW.0308")
    # Every answer proved nothing was created, so a re-drive posts without looking first.
    assert not rig.in_doubt(msg)
    _, run, what = rig.store.submit(parse_request(msg.payload))
    assert what is Submitted.REDRIVEN
    rig.api.answer_creates(created("job-9"))
    assert rig.deliver(replace(msg, run=run)) == Outcome("finished", reason="created")
    assert rig.api.methods == ["POST"] * 6
