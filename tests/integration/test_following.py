"""Following tasks to their end on real parts: real Redis, real worker processes, the simulator
with lifecycle and chaos faults, a worker SIGKILLed; and the three answers a second create with
an existing name may get."""

from __future__ import annotations

import itertools
import random
import time
import uuid
from collections import Counter
from typing import Any

import pytest

from htap_sync.common.connections import make_redis, make_store
from htap_sync.common.models import TicketState, parse_request
from htap_sync.common.settings import Settings, load_settings
from htap_sync.common.tickets.store import Submitted
from htap_sync.devstack import wait_until
from htap_sync.producer.api import Producer
from htap_sync.simulator import SimulatorConfig, SimulatorServer
from htap_sync.worker.api.auth import TokenAuth
from htap_sync.worker.api.client import TaurusClient, make_http
from htap_sync.worker.delivery.ticket import Outcome, process_ticket
from tests.conftest import request_data
from tests.integration.conftest import WorkerFactory
from tests.integration.harness import TOKEN
from tests.integration.paths import PATHS, submit
from tests.integration.test_faults import FAST_FAULTS, _assert_each_created_once

# Timing-bound: `make test` runs it in the serial set, after the others (see the Makefile).
pytestmark = pytest.mark.serial

INSTANCES = [f"{n:032d}in17" for n in range(1, 5)]
INTERVAL_S = 1.0


class TestFollowingUnderChaos:
    """200 tasks on 4 instances, faults on creates, a worker killed: each followed to its end."""

    @pytest.fixture
    def sim_config(self) -> SimulatorConfig:
        """Faults on creates; tasks wait 3 s, spend 1 s in Full; a fifth fail to sync."""
        return SimulatorConfig(
            token=TOKEN,
            seed=20261204,
            fail_rate=0.2,
            created_then_500_rate=0.05,
            drop_after_create_rate=0.03,
            stage_wait_s=3.0,
            stage_full_s=1.0,
            sync_fail_rate=0.2,
            job_appear_delay_s=0.5,
        )

    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        """Fast retries, and follow rounds every second."""
        return {
            **FAST_FAULTS,
            "follow_first_s": 0.5,
            "follow_interval_s": INTERVAL_S,
            "follow_timeout_s": 120,
        }

    @pytest.mark.serial(seconds=15)
    @pytest.mark.timeout(330)
    @pytest.mark.parametrize("path", PATHS)
    def test_every_task_followed_to_what_the_service_decided(
        self,
        path: str,
        producer: Producer,
        simulator: SimulatorServer,
        start_worker: WorkerFactory,
    ) -> None:
        """Each ticket carries its task_ref and ends syncing or failed as the simulator
        decided; nothing is created twice; one list call per instance per round."""
        requests = [
            request_data(instance_id=INSTANCES[i % 4], task_name=f"f_{i:03d}") for i in range(200)
        ]
        tickets = submit(producer, requests, path)
        workers = [start_worker(concurrency=8), start_worker(concurrency=8)]

        def done() -> int:
            return sum(1 for s in producer.statuses(tickets).values() if s and s.state.terminal)

        wait_until(lambda: done() >= 40, timeout_s=60, what="40 created")
        workers[0].kill()
        workers.append(start_worker(concurrency=8))
        # A ticket whose message or delayed-set claim died with the worker waits for the
        # visibility timeout or the mover's claim to run out: allow for both.
        created = producer.wait(tickets, timeout_s=150, poll_s=0.1)
        left = [s for s in created.values() if s.state is not TicketState.SUCCEEDED]
        assert not left, [(s.error, s.attempts, s.history[-4:]) for s in left[:2]]
        creation_over = time.monotonic()
        statuses = producer.wait(tickets, timeout_s=90, poll_s=0.2, until="synced")
        assert all(s.done("synced") for s in statuses.values()), Counter(
            s.sync.state if s.sync else None for s in statuses.values()
        )

        planned = {(t["instance_id"], t["task_name"]): t for t in simulator.state.tasks_report()}
        for status in statuses.values():
            r = status.request
            assert status.task_ref == f"{r.instance_id}/{r.task_name}"
            assert status.project_id == r.project_id
            assert status.sync is not None
            expected = planned[(r.instance_id, r.task_name)]["planned"]
            assert status.sync.state.value == expected, (
                status.sync,
                planned[(r.instance_id, r.task_name)],
            )
            if status.reconciled:
                assert status.job_id is None and status.job_id_reason and status.found
        outcomes = Counter(s.sync.state.value for s in statuses.values() if s.sync)
        assert outcomes["failed"] > 0 and outcomes["syncing"] > 0
        assert any(s.reconciled for s in statuses.values())
        _assert_each_created_once(simulator, statuses)
        _assert_one_list_call_per_instance_per_round(simulator, since=creation_over)


def _assert_one_list_call_per_instance_per_round(sim: SimulatorServer, *, since: float) -> None:
    """After creation, list calls are follow rounds: per instance, rounds an interval apart."""
    calls = sim.state.list_call_times()
    assert {instance for _, instance in calls} == set(INSTANCES)
    followed_after = 0
    for (_, instance), times in calls.items():
        # Reconciliations list too, while tickets are created; after that, only rounds do.
        rounds = [t for t in times if t > since]
        followed_after += bool(rounds)
        gaps = [b - a for a, b in itertools.pairwise(rounds)]
        # Two workers never run one instance's round twice, and a round is one call, however
        # many tickets (50 here) the instance has: 1/50 list calls per ticket per round.
        assert all(gap >= 0.8 * INTERVAL_S for gap in gaps), (instance, gaps)
    assert followed_after >= 1  # the check above had rounds to look at


@pytest.mark.parametrize("mode", ["reject-409", "reject-400", "accept"])
def test_a_lost_in_doubt_mark_never_fails_or_duplicates(mode: str, redis_url: str) -> None:
    """Whatever a second create with an existing name answers, a task whose first create
    answer was lost (and its in-doubt mark too, as after a failover) ends succeeded, once."""
    config = SimulatorConfig(token=TOKEN, seed=1, existing_name=mode)
    with SimulatorServer(config) as sim:
        unique = uuid.uuid4().hex[:12]
        settings: Settings = load_settings(
            {
                "redis_url": redis_url,
                "endpoint": sim.url,
                "auth_token": TOKEN,
                "key_prefix": f"test-{unique}",
                "queue": f"test-{unique}",
                "backoff_base_s": 0.01,
                "backoff_max_s": 0.05,
            },
            env_file=None,
        )
        store = make_store(settings, make_redis(settings))
        http = make_http(settings, auth=TokenAuth(settings.auth.token))  # type: ignore[arg-type]
        client = TaurusClient(http)
        payload = request_data(task_name=f"lost_{mode.replace('-', '_')}")
        ticket, run, what = store.submit(parse_request(payload))
        assert what is Submitted.QUEUED
        sim.state.script(["created_then_500"])

        def deliver() -> Outcome:
            return process_ticket(
                ticket,
                run,
                payload,
                client=client,
                store=store,
                settings=settings,
                rng=random.Random(1),
            )

        assert deliver().kind == "retry"
        store.redis.hset(store.key(ticket), "in_doubt", "0")  # the mark lost to a failover
        outcomes = [deliver()]
        while outcomes[-1].kind != "finished":
            outcomes.append(deliver())
        status = store.get(ticket)
        assert status.state is TicketState.SUCCEEDED, (status.error, outcomes)
        r = parse_request(payload)
        assert sim.state.creates_for(r.project_id, r.instance_id, r.task_name) == 1
        assert sim.state.name_hits(r.project_id, r.instance_id, r.task_name) == 1
        # Rejected: found by the list call (no job id). Accepted: the service's answer.
        assert (status.job_id is None) is (mode != "accept")
        http.close()
