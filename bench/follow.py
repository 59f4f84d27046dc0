"""API calls spent on following created tasks: our rounds against per-ticket polling.

Both follow the same tasks on the simulator (served in this process) to their end, on a real
Redis: ours groups tickets by instance and makes one list call per instance per round (plus jobs
and configuration calls only while they can tell something); the reference polls the list once
per ticket per round, as a per-task follower (the Terraform provider's way) would.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

import httpx
import redis

from bench.report import Row, Table, print_alone, progress
from htap_sync.common.keys import Keys
from htap_sync.common.limits.gate import OPEN_GATE
from htap_sync.common.models import parse_request
from htap_sync.simulator import SimulatorConfig, SimulatorServer
from htap_sync.worker.api.client import TaurusClient
from htap_sync.worker.following.follower import Follower
from htap_sync.worker.following.judge import Followed
from htap_sync.worker.following.store import FollowStore

PROJECT = "0123456789abcdef0123456789abcdef"
SOURCE = "1a2b3c4d5e6f708192a3b4c5d6e7f809in07"
CONFIG = SimulatorConfig(stage_wait_s=0.3, seed=1)  # tasks wait 0.3 s, then sync
PAUSE_S = 0.1


def _instances(n: int) -> list[str]:
    return [f"{i:032d}in17" for i in range(1, n + 1)]


def _create(
    sim: SimulatorServer, instances: list[str], per_instance: int
) -> list[tuple[str, str, str]]:
    made = []
    with httpx.Client(base_url=sim.url) as http:
        for instance in instances:
            for n in range(per_instance):
                name = f"bench_{n:04d}"
                path = f"/v3/{PROJECT}/instances/{instance}/starrocks/databases/replication"
                body = {
                    "source_instance_id": SOURCE,
                    "source_database": "src_db",
                    "target_database": "tgt_db",
                    "task_name": name,
                }
                job_id = http.post(path, json=body).json()["job_id"]
                made.append((instance, name, job_id))
    return made


def ours(redis_url: str, instances: int, per_instance: int) -> tuple[int, int, int]:
    """(list calls, all follow calls, rounds) for our follower, rounds ``PAUSE_S`` apart."""
    with SimulatorServer(CONFIG) as sim, httpx.Client(base_url=sim.url) as http:
        made = _create(sim, _instances(instances), per_instance)
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        store = FollowStore(client, Keys(f"bench-{uuid.uuid4().hex[:8]}"))
        for instance, name, job_id in made:
            ticket = f"tk_{instance[:4]}_{name}"
            item = Followed(ticket, name, job_id, deadline=time.time() + 600)
            store.enroll(ticket, item, project_id=PROJECT, instance_id=instance, first_at=0.0)
        follower = Follower(store, TaurusClient(http), OPEN_GATE, interval_s=PAUSE_S)
        before = sim.state.snapshot()
        rounds = 0
        while store.state()["tickets"]:
            time.sleep(PAUSE_S)  # the pause between rounds: what the benchmark paces
            rounds += follower.run_once() > 0
        after = sim.state.snapshot()
        client.close()
    lists = after["list_calls"] - before["list_calls"]
    others = sum(after["task_calls"].values()) - sum(before["task_calls"].values())
    return lists, lists + others, rounds


def per_ticket(instances: int, per_instance: int) -> tuple[int, int]:
    """(list calls, rounds) for a follower that polls the list once per ticket per round."""
    with SimulatorServer(CONFIG) as sim, httpx.Client(base_url=sim.url) as http:
        made = _create(sim, _instances(instances), per_instance)
        client = TaurusClient(http)
        pending = {(instance, name) for instance, name, _ in made}
        rounds = 0
        before = sim.state.list_calls
        while pending:
            for instance, name in sorted(pending):
                request = parse_request(
                    {
                        "project_id": PROJECT,
                        "instance_id": instance,
                        "source_instance_id": SOURCE,
                        "source_database": "src_db",
                        "target_database": "tgt_db",
                        "task_name": name,
                    }
                )
                row = client.find_replication(request)
                if row is not None and row.stage_key in {"full", "incremental"}:
                    pending.discard((instance, name))
            rounds += 1
            time.sleep(PAUSE_S)
        return sim.state.list_calls - before, rounds


def run(redis_url: str, logs: Path, *, instances: int = 4, per_instance: int = 50) -> list[Table]:
    """List calls per ticket per round, and every follow call per ticket, against polling."""
    tickets = instances * per_instance
    progress(f"follow: {tickets} tickets on {instances} instances, ours")
    lists, total, rounds = ours(redis_url, instances, per_instance)
    progress("follow: per-ticket polling")
    naive_lists, naive_rounds = per_ticket(instances, per_instance)
    rows = [
        Row(
            "list calls per ticket per round",
            lists / tickets / rounds,
            "calls",
            "one list call per ticket per round",
            naive_lists / tickets / naive_rounds,
            note=f"{per_instance} tickets per instance; goal <= 0.1",
        ),
        Row(
            "all follow calls per ticket (list, jobs, configuration)",
            total / tickets,
            "calls",
            "per-ticket polling, list calls only",
            naive_lists / tickets,
            note=f"until every task synced ({rounds} rounds for ours)",
        ),
    ]
    setup = (
        f"{tickets} created tasks ({per_instance} on each of {instances} instances) followed to"
        " stage Full/Incremental on the simulator (0.3 s in Wait), rounds a tenth of a second"
        " apart; our follower on a real Redis. Lower ratio is better."
    )
    return [Table("API calls spent on following", setup, rows)]


def main(argv: list[str] | None = None) -> int:
    """Run this benchmark alone and print its table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--instances", type=int, default=4)
    parser.add_argument("--per-instance", type=int, default=50)
    args = parser.parse_args(argv)
    return print_alone(
        "follow",
        lambda url, logs: run(url, logs, instances=args.instances, per_instance=args.per_instance),
    )


if __name__ == "__main__":
    sys.exit(main())
