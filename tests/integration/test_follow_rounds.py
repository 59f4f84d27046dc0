"""Follow rounds on a real Redis: one list call per instance per round, verdicts on tickets."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import redis

from htap_sync.common.keys import Keys
from htap_sync.common.limits.gate import OPEN_GATE
from htap_sync.common.sync_info import SyncInfo, SyncState
from htap_sync.worker.api.client import TaurusClient
from htap_sync.worker.following.follower import Follower
from htap_sync.worker.following.judge import Followed
from htap_sync.worker.following.store import FollowStore, instance_ref

PROJECT = "0123456789abcdef0123456789abcdef"
INSTANCES = ("a" * 32 + "in17", "b" * 32 + "in17")


class Service:
    """A scripted TaurusDB: per task, the stage it shows at each round; job statuses."""

    def __init__(self) -> None:
        self.stages: dict[tuple[str, str], list[str]] = {}
        self.jobs: dict[str, str] = {}
        self.calls: Counter[str] = Counter()
        self.round = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/jobs"):
            self.calls["jobs"] += 1
            status = self.jobs.get(request.url.params["id"], "Running")
            return httpx.Response(200, json={"job": {"id": "j", "status": status}})
        instance = path.split("/")[4]
        self.calls[f"list:{instance}"] += 1
        rows = [
            {
                "task_name": name,
                "source_database": "src",
                "target_database": "tgt",
                "stage": stages[min(self.round, len(stages) - 1)],
                "status": "Yes",
                "percentage": "0",
            }
            for (inst, name), stages in sorted(self.stages.items())
            if inst == instance and stages[min(self.round, len(stages) - 1)] != "-"
        ]
        return httpx.Response(200, json={"total_count": str(len(rows)), "replications": rows})


@pytest.fixture
def store(redis_url: str) -> Iterator[FollowStore]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield FollowStore(client, Keys(f"test-{uuid.uuid4().hex[:12]}"))
    client.close()


def _follower(store: FollowStore, service: Service, clock: list[float]) -> Follower:
    http = httpx.Client(base_url="https://api.test", transport=httpx.MockTransport(service.handle))
    return Follower(store, TaurusClient(http), OPEN_GATE, interval_s=10.0, clock=lambda: clock[0])


def _enroll(store: FollowStore, service: Service, per_instance: int) -> list[str]:
    tickets = []
    for i, instance in enumerate(INSTANCES):
        for n in range(per_instance):
            ticket, name = f"tk_{i}_{n}", f"task_{i}_{n}"
            store.redis.hset(store.keys.ticket(ticket), "state", "succeeded")
            # Each task is unlisted at first, then Wait, then Full: syncing by round 2.
            service.stages[(instance, name)] = ["-", "Wait", "Full"]
            service.jobs[f"job-{ticket}"] = "Running"
            item = Followed(ticket, name, f"job-{ticket}", deadline=1000.0)
            store.enroll(ticket, item, project_id=PROJECT, instance_id=instance, first_at=5.0)
            tickets.append(ticket)
    return tickets


def _sync(store: FollowStore, ticket: str) -> dict[str, object]:
    text = store.redis.hget(store.keys.ticket(ticket), "sync")
    assert isinstance(text, str)
    data = json.loads(text)
    assert isinstance(data, dict)
    return data


def test_one_list_call_per_instance_per_round(store: FollowStore) -> None:
    """50 tickets on each of 2 instances: 2 list calls a round, then all syncing, forgotten."""
    service, clock = Service(), [0.0]
    tickets = _enroll(store, service, per_instance=50)
    assert _sync(store, tickets[0])["state"] == "following"
    follower = _follower(store, service, clock)
    assert follower.run_once() == 0  # the first round is due at 5 s
    for service.round in range(3):
        clock[0] = 5.0 + 10.0 * service.round
        assert follower.run_once() == len(INSTANCES)
        assert follower.run_once() == 0  # claimed: no second round before the interval
        lists = {k: v for k, v in service.calls.items() if k.startswith("list:")}
        assert lists == {f"list:{i}": service.round + 1 for i in INSTANCES}
    states = Counter(_sync(store, t)["state"] for t in tickets)
    assert states == {SyncState.SYNCING.value: 100}
    assert _sync(store, tickets[0])["stage"] == "Full"
    # Jobs were asked while the tasks were not syncing (rounds 0 and 1), never after.
    assert service.calls["jobs"] == 200
    assert store.state() == {"instances": 0, "tickets": 0, "next_round_at": None}


def test_two_workers_never_run_the_same_round(store: FollowStore) -> None:
    """Two followers looking at the same moment split the instances between them."""
    service, clock = Service(), [5.0]
    _enroll(store, service, per_instance=3)
    first, second = _follower(store, service, clock), _follower(store, service, clock)
    assert first.run_once() + second.run_once() == len(INSTANCES)
    assert sum(v for k, v in service.calls.items() if k.startswith("list:")) == len(INSTANCES)


def test_a_failed_job_and_the_deadline_end_following(store: FollowStore) -> None:
    """A Failed create job fails its task; a task never listed is unknown past its deadline."""
    service, clock = Service(), [5.0]
    instance = INSTANCES[0]
    service.stages[(instance, "ok_task")] = ["-"]
    service.stages[(instance, "bad_task")] = ["Wait"]
    service.jobs.update({"job-ok": "Completed", "job-bad": "Failed"})
    for ticket, name, deadline in (("tk_ok", "ok_task", 20.0), ("tk_bad", "bad_task", 99.0)):
        store.redis.hset(store.keys.ticket(ticket), "state", "succeeded")
        item = Followed(ticket, name, f"job-{ticket[3:]}", deadline=deadline)
        store.enroll(ticket, item, project_id=PROJECT, instance_id=instance, first_at=5.0)
    follower = _follower(store, service, clock)
    follower.run_once()
    bad = _sync(store, "tk_bad")
    assert bad["state"] == "failed" and bad["job_status"] == "Failed"
    assert _sync(store, "tk_ok")["state"] == "following"
    clock[0] = 25.0
    follower.run_once()
    ok = _sync(store, "tk_ok")
    assert ok["state"] == "unknown" and "not in the list" in str(ok["fail_reason"])
    # The ended job was not asked again in the second round.
    assert service.calls["jobs"] == 2
    assert store.redis.zscore(store.keys.follow_due, instance_ref(PROJECT, instance)) is None


def _one_followed(store: FollowStore, ticket: str = "tk_f") -> tuple[str, Followed]:
    instance = INSTANCES[0]
    store.redis.hset(store.keys.ticket(ticket), "state", "succeeded")
    item = Followed(ticket, "fenced_task", "job-f", deadline=1000.0)
    store.enroll(ticket, item, project_id=PROJECT, instance_id=instance, first_at=5.0)
    return instance_ref(PROJECT, instance), item


def test_a_round_that_lost_its_claim_writes_nothing(store: FollowStore) -> None:
    """A round outlives its hold and another worker claims the instance: the late round's
    verdict and schedule are refused (the claim's fencing token moved on); the new one's hold."""
    ref, item = _one_followed(store)
    (late,) = store.claim_due(5.0, hold_s=5.0)
    (taken,) = store.claim_due(11.0, hold_s=5.0)  # late's hold ran out at 10 s
    assert taken.ref == late.ref == ref and taken.token != late.token
    final = SyncInfo(state=SyncState.SYNCING, stage="Full")
    assert store.record(taken, item, final)
    stale = SyncInfo(state=SyncState.FOLLOWING, stage="Wait")
    assert not store.record(late, item, stale)  # never overwrites the final verdict
    assert _sync(store, "tk_f")["state"] == "syncing"
    assert not store.schedule(late, 99.0)
    assert not store.renew(late, 99.0)
    assert store.members(ref) == []  # the ticket left the follow set; nobody puts it back


def test_a_renewed_claim_keeps_other_workers_out(store: FollowStore) -> None:
    """While its round runs, a claim renewed before its hold ends is never taken over."""
    _one_followed(store)
    (held,) = store.claim_due(5.0, hold_s=5.0)
    assert store.renew(held, 14.0)
    assert store.claim_due(12.0, hold_s=5.0) == []
    assert len(store.claim_due(14.5, hold_s=5.0)) == 1


def test_a_ticket_enrolled_while_a_round_runs_waits_for_that_round(store: FollowStore) -> None:
    """A round holds its instance; a ticket created meanwhile brings the instance's next
    round forward (its first look): no other worker claims the instance while the round holds
    it (two rounds at once made two list calls 1 s apart in make test); once the round has
    scheduled the next, that one is claimed."""
    _one_followed(store)
    (held,) = store.claim_due(5.0, hold_s=5.0)
    store.redis.hset(store.keys.ticket("tk_new"), "state", "succeeded")
    item = Followed("tk_new", "new_task", "job-new", deadline=1000.0)
    store.enroll("tk_new", item, project_id=PROJECT, instance_id=INSTANCES[0], first_at=6.0)
    assert store.claim_due(7.0, hold_s=5.0) == []
    assert store.renew(held, 14.0)
    assert store.claim_due(12.0, hold_s=5.0) == []
    assert store.schedule(held, 13.0)
    (next_round,) = store.claim_due(13.0, hold_s=5.0)
    assert next_round.token != held.token


def test_a_late_writer_never_puts_back_a_ticket_that_left(store: FollowStore) -> None:
    """A ticket whose following ended (a final verdict) is not followed again by a round that
    still holds its claim but judged from an older look."""
    ref, item = _one_followed(store)
    (claimed,) = store.claim_due(5.0, hold_s=5.0)
    assert store.record(claimed, item, SyncInfo(state=SyncState.FAILED, fail_reason="x"))
    assert not store.record(claimed, item, SyncInfo(state=SyncState.FOLLOWING))
    assert store.members(ref) == []
    assert _sync(store, "tk_f")["state"] == "failed"


def test_a_task_that_fails_to_sync_is_a_warning(
    store: FollowStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A task whose create job failed is logged at WARNING with its ticket, task and reason;
    one that syncs stays at INFO."""
    import logging

    service, clock = Service(), [5.0]
    tickets = _enroll(store, service, per_instance=1)
    service.jobs[f"job-{tickets[0]}"] = "Failed"
    service.stages[(INSTANCES[0], "task_0_0")] = ["-"]
    service.stages[(INSTANCES[1], "task_1_0")] = ["Incremental"]
    with caplog.at_level(logging.INFO, logger="htap_sync.follow"):
        assert _follower(store, service, clock).run_once() == len(INSTANCES)
    verdicts = {r.__dict__["ticket"]: r for r in caplog.records if "sync_state" in r.__dict__}
    failed, synced = verdicts[tickets[0]], verdicts[tickets[1]]
    assert failed.levelno == logging.WARNING
    assert failed.__dict__["task"] == f"{INSTANCES[0]}/task_0_0"
    assert "failed" in failed.__dict__["reason"]
    assert synced.levelno == logging.INFO and synced.__dict__["sync_state"] == "syncing"


def test_a_failing_tasks_job_is_asked_first(store: FollowStore) -> None:
    """A round asks the jobs of the tasks the list shows failed before the others: their
    verdicts wait for their jobs' reasons, the others can wait for a token."""
    service, clock = Service(), [5.0]
    instance = INSTANCES[0]
    asked: list[str] = []
    handle = service.handle

    def handle_noting_jobs(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/jobs"):
            asked.append(request.url.params["id"])
        return handle(request)

    service.handle = handle_noting_jobs  # type: ignore[method-assign]
    for name, stage in (("a_fine", "Wait"), ("b_cancelled", "Cancelled"), ("c_fine", "Wait")):
        ticket = f"tk_{name}"
        store.redis.hset(store.keys.ticket(ticket), "state", "succeeded")
        service.stages[(instance, name)] = [stage]
        item = Followed(ticket, name, f"job-{name}", deadline=1000.0)
        store.enroll(ticket, item, project_id=PROJECT, instance_id=instance, first_at=5.0)
    _follower(store, service, clock).run_once()
    assert asked[0] == "job-b_cancelled" and len(asked) == 3


class LaneRecordingGate:
    """Lets every call through, recording the lane and tenant each was made for."""

    def __init__(self) -> None:
        self.asks: list[tuple[str, str | None, str | None]] = []

    def before_call(
        self, project_id: str, api: str, lane: str | None = None, tenant: str | None = None
    ) -> None:
        self.asks.append((api, lane, tenant))

    def after_call(self, project_id: str, api: str, error: object) -> None:
        """Nothing to remember."""


def test_rounds_ask_the_gate_in_their_tickets_lanes(store: FollowStore) -> None:
    """Following keeps the lanes (issue 23): a round of bulk tickets asks for its list call as
    bulk, for the tenant with most tickets there; a round following any interactive ticket
    asks as interactive; each jobs call asks in its own ticket's lane and tenant. The lane and
    tenant are kept in the follow set from one round to the next."""
    service, clock, gate = Service(), [5.0], LaneRecordingGate()
    bulk_instance, mixed_instance = INSTANCES
    enrolled = [
        (bulk_instance, "tk_b1", "bulk", "team_a"),
        (bulk_instance, "tk_b2", "bulk", "team_b"),
        (bulk_instance, "tk_b3", "bulk", "team_b"),
        (mixed_instance, "tk_m1", "bulk", "team_a"),
        (mixed_instance, "tk_m2", "interactive", None),
    ]
    for instance, ticket, lane, tenant in enrolled:
        service.stages[(instance, ticket)] = ["Wait"]
        store.redis.hset(store.keys.ticket(ticket), "state", "succeeded")
        item = Followed(ticket, ticket, f"job-{ticket}", 1000.0, lane=lane, tenant=tenant)
        store.enroll(ticket, item, project_id=PROJECT, instance_id=instance, first_at=5.0)
    http = httpx.Client(base_url="https://api.test", transport=httpx.MockTransport(service.handle))
    follower = Follower(store, TaurusClient(http), gate, interval_s=10.0, clock=lambda: clock[0])
    for service.round in range(2):
        clock[0] = 5.0 + 10.0 * service.round
        gate.asks.clear()
        assert follower.run_once() == 2
        lists = sorted(ask for ask in gate.asks if ask[0] == "list")
        assert lists == [("list", "bulk", "team_b"), ("list", "interactive", None)]
        jobs = sorted(ask for ask in gate.asks if ask[0] == "jobs")
        expected = sorted(("jobs", lane, tenant) for _, _, lane, tenant in enrolled)
        assert jobs == expected
    kept = {
        m.ticket: (m.lane, m.tenant) for m in store.members(instance_ref(PROJECT, bulk_instance))
    }
    assert kept == {
        "tk_b1": ("bulk", "team_a"),
        "tk_b2": ("bulk", "team_b"),
        "tk_b3": ("bulk", "team_b"),
    }
