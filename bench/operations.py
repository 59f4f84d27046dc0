"""API calls per task for a pause and a resume of many tasks: ours against the provider's way.

Both pause, then resume, the same tasks on the same simulator (served in this process), which
counts every call by API. Ours goes through the product: the tasks are created by a worker
(``Producer.enqueue_many``, waited for until synced), then each phase is
``producer.operations`` on every task this deployment created on each instance (what
``htap-sync pause --instance ID --all --wait`` does), carried by one ``htap-sync worker``
process on a real Redis. The reference is the provider's way (Huawei's Terraform provider,
``huaweicloud/services/taurusdb``): for each task the action call, then a full list scan (every
page) per poll until the task's row shows the operation done, at the same poll interval, as a
plain httpx loop; tasks run ten at a time, as ``terraform apply`` runs resources by default.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.fixtures import PROJECT, SOURCE, TOKEN, our_env, settings_from_env, tag
from bench.report import Row, Table, print_alone, progress
from htap_sync.common.models import Operation, TicketState
from htap_sync.common.operations import holds
from htap_sync.producer.api import Producer
from htap_sync.simulator import SimulatorConfig, SimulatorServer
from htap_sync.worker.api.client import replication_path

INTERVAL_S = 0.1  # HTAP_SYNC_FOLLOW_INTERVAL_S, and the reference's poll interval
OP_JOB_S = 0.25  # a pause or resume job runs this long before the list shows it
CONFIG = SimulatorConfig(token=TOKEN, op_job_s=OP_JOB_S, seed=1)  # tasks sync at once
PARALLELISM = 10  # terraform apply's default -parallelism
PAGE = 100  # the list call's largest page
APIS = ("pause", "resume", "list", "jobs")
PHASES: tuple[Operation, ...] = ("pause", "resume")
WAIT_S = 180.0


def calls(snapshot: Mapping[str, Any]) -> dict[str, int]:
    """Every API's calls so far in a simulator snapshot (``list`` and each task route)."""
    counted = {str(api): int(n) for api, n in snapshot.get("task_calls", {}).items()}
    return {"list": int(snapshot.get("list_calls", 0)), **counted}


def calls_between(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, int]:
    """The calls made between two simulator snapshots, by API (every API seen, zeros too)."""
    start, end = calls(before), calls(after)
    return {api: end.get(api, 0) - start.get(api, 0) for api in sorted({*start, *end})}


@dataclass(frozen=True)
class Phase:
    """The calls one way made to pause (or resume) ``tasks`` tasks, by API."""

    operation: str
    tasks: int
    calls: dict[str, int]
    seconds: float = 0.0  # from the first call asked to the last task done

    def per_task(self, api: str | None = None) -> float:
        """Calls of ``api`` per task (None: every call)."""
        count = sum(self.calls.values()) if api is None else self.calls.get(api, 0)
        return count / self.tasks


def instances(n: int) -> list[str]:
    """``n`` StarRocks instance ids."""
    return [f"{i:032d}in17" for i in range(1, n + 1)]


def requests(of: Iterable[str], per_instance: int) -> list[dict[str, str]]:
    """``per_instance`` create requests on each instance, one database pair each."""
    return [
        {
            "project_id": PROJECT,
            "instance_id": instance,
            "source_instance_id": SOURCE,
            "source_database": f"db_{n:04d}",
            "target_database": f"db_{n:04d}",
            "task_name": f"ops_{n:04d}",
        }
        for instance in of
        for n in range(per_instance)
    ]


def _succeeded(producer: Producer, tickets: list[str], what: str, **wait: Any) -> None:
    statuses = producer.wait(tickets, timeout_s=WAIT_S, poll_s=0.05, **wait)
    bad = [t for t, s in statuses.items() if s.state is not TicketState.SUCCEEDED]
    if bad or len(statuses) != len(tickets):
        raise RuntimeError(f"{what}: {len(bad)} of {len(tickets)} tickets did not succeed")


def _our_phase(
    producer: Producer, sim: SimulatorServer, operation: Operation, on: list[str], tasks: int
) -> Phase:
    """Pause (resume) every task created on each instance, as ``--instance ID --all --wait``."""
    before = sim.state.snapshot()
    started = time.monotonic()
    ops = producer.operations
    tickets: list[str] = []
    for instance in on:
        receipts = ops.submit_all(ops.of_instance(operation, instance, PROJECT))
        tickets += [r.ticket for r in receipts if r.accepted and r.ticket]
    if len(tickets) != tasks:
        raise RuntimeError(f"{operation}: {len(tickets)} of {tasks} operations queued")
    _succeeded(producer, tickets, operation)
    spent = time.monotonic() - started
    return Phase(operation, tasks, calls_between(before, sim.state.snapshot()), spent)


def ours(redis_url: str, logs: Path, sim: SimulatorServer, on: list[str], per: int) -> list[Phase]:
    """Create the tasks through the product, then pause all of them, then resume all."""
    prefix = tag("ops")
    env = our_env(redis_url, sim.url, prefix, rate_per_s=100_000.0, burst=10_000)
    env |= {"HTAP_SYNC_FOLLOW_INTERVAL_S": f"{INTERVAL_S:g}", "HTAP_SYNC_FOLLOW_FIRST_S": "0"}
    producer = Producer(settings_from_env(env))
    from bench.procs import our_worker  # psutil: the bench extra (the unit tests lack it)

    worker = our_worker(prefix, env, logs, concurrency=8)
    try:
        made = [r.ticket for r in producer.enqueue_many(requests(on, per)) if r.ticket]
        _succeeded(producer, made, "create", until="synced")
        progress(f"operations: {len(made)} tasks created and synced; ours")
        return [_our_phase(producer, sim, op, on, len(made)) for op in PHASES]
    finally:
        if not worker.alive():
            progress(f"operations: the worker exited:\n{worker.log_tail()}")
        worker.stop()
        producer.close()


def scan(http: httpx.Client, instance: str) -> list[dict[str, Any]]:
    """Every row of an instance's list, every page (one list call per page)."""
    rows: list[dict[str, Any]] = []
    while True:
        answer = http.get(
            replication_path(PROJECT, instance), params={"limit": PAGE, "offset": len(rows)}
        )
        answer.raise_for_status()
        page = answer.json()["replications"]
        rows += page
        if not page or len(rows) >= int(answer.json().get("total_count") or 0):
            return rows


def stage_of(rows: list[dict[str, Any]], name: str) -> str | None:
    """The stage of the row of task ``name`` (None: not listed)."""
    return next((str(r.get("stage") or "") for r in rows if r.get("task_name") == name), None)


def provider_task(sim_url: str, operation: Operation, instance: str, name: str) -> None:
    """One task the provider's way: the action, then a full list scan per poll until done
    (its first poll after half an interval: 5 s of delay before polls 10 s apart)."""
    headers = {"X-Auth-Token": TOKEN}
    with httpx.Client(base_url=sim_url, headers=headers) as http:
        path = f"{replication_path(PROJECT, instance)}/{operation}"
        http.post(path, json={"task_name": name}).raise_for_status()
        time.sleep(INTERVAL_S / 2)
        deadline = time.monotonic() + WAIT_S
        while not holds(operation, stage_of(scan(http, instance), name)):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{operation} of {instance}/{name}: not done in time")
            time.sleep(INTERVAL_S)


def provider(sim: SimulatorServer, operation: Operation, made: list[dict[str, str]]) -> Phase:
    """The provider's way on every task, ``PARALLELISM`` tasks at a time."""
    before = sim.state.snapshot()
    started = time.monotonic()
    with ThreadPoolExecutor(PARALLELISM) as pool:
        done = [
            pool.submit(provider_task, sim.url, operation, r["instance_id"], r["task_name"])
            for r in made
        ]
        for future in done:
            future.result()
    spent = time.monotonic() - started
    return Phase(operation, len(made), calls_between(before, sim.state.snapshot()), spent)


def unseen(mine: Phase, theirs: Phase) -> list[str]:
    """The APIs of ``APIS`` neither way called in this phase (their rows are left out)."""
    return [api for api in APIS if not mine.calls.get(api) and not theirs.calls.get(api)]


def rows_of(mine: Phase, theirs: Phase) -> list[Row]:
    """One row per API and one for every call, calls per task, for one phase."""
    reference = "the provider's way"
    rows = [
        Row(
            f"{mine.operation}: {api} calls per task",
            mine.per_task(api),
            "calls",
            reference,
            theirs.per_task(api),
        )
        for api in APIS
        if api not in unseen(mine, theirs)
    ]
    seen = {api for api, n in [*mine.calls.items(), *theirs.calls.items()] if n}
    others = sorted(seen - set(APIS))
    note = f"also {', '.join(others)} calls" if others else "pause, resume, list and jobs calls"
    rows.append(
        Row(
            f"{mine.operation}: all calls per task",
            mine.per_task(),
            "calls",
            reference,
            theirs.per_task(),
            note=note,
        )
    )
    return rows


def _notes(mine: list[Phase], theirs: list[Phase], per_instance: int) -> list[str]:
    """The table's notes: APIs neither way called, each phase's time, how each way counts."""
    notes = [
        f"{m.operation}: no {', '.join(gone)} calls either way"
        for m, t in zip(mine, theirs, strict=True)
        if (gone := unseen(m, t))
    ]
    notes += [
        f"{m.operation} of all {m.tasks} tasks took {m.seconds:.1f} s ours, {t.seconds:.1f} s"
        " the provider's way (not a goal here: calls are)"
        for m, t in zip(mine, theirs, strict=True)
    ]
    notes += [
        "Ours: each ticket looks before acting (a rerun sends nothing), sends its action, then"
        " looks again when it comes back from the delayed set (due"
        f" {INTERVAL_S:g} s later, moved back by a mover that looks every 0.5 s); a jobs call"
        " only when a look finds the operation not yet shown. The looks share list calls per"
        " instance (`worker/delivery/shared_look.py`): one worker lists, the others read its"
        " snapshot, each only a snapshot whose call started after its own moment (submitted,"
        " answered, last look), so a look round costs about one list call per instance. The"
        " provider's way polls from half an interval after its action (its 5 s delay before"
        " polls 10 s apart) until the row shows it done, so its list calls grow with the job's"
        " time over the interval.",
        f"{per_instance} tasks per instance fit one page ({PAGE} rows): a full scan is one list"
        " call here; past a page both ways pay every page of a scan, the provider's way per task"
        " per poll, ours per instance per look round. Both stop at the same predicate (stage"
        " Paused; Full or Incremental), `common/operations.py`'s.",
    ]
    return notes


def run(redis_url: str, logs: Path, *, instances_n: int = 4, per_instance: int = 50) -> list[Table]:
    """Pause then resume ``instances_n * per_instance`` tasks both ways; calls per task."""
    on = instances(instances_n)
    tasks = instances_n * per_instance
    with SimulatorServer(CONFIG) as sim:
        progress(f"operations: {tasks} tasks on {instances_n} instances")
        mine = ours(redis_url, logs, sim, on, per_instance)
        progress("operations: the provider's way")
        theirs = [provider(sim, op, requests(on, per_instance)) for op in PHASES]
    rows = [row for m, t in zip(mine, theirs, strict=True) for row in rows_of(m, t)]
    setup = (
        f"{tasks} tasks ({per_instance} on each of {instances_n} instances), created through"
        " the product, paused all, then resumed all, on the simulator (a pause or resume job"
        f" runs {OP_JOB_S:g} s before the list shows it), polls {INTERVAL_S:g} s apart both"
        " ways. Ours: `producer.operations` on every task of each instance (as `htap-sync pause"
        " --instance ID --all --wait`), one worker (8 threads) on a real Redis. The provider's"
        " way: per task the action, then a full list scan (every page) per poll until the row"
        f" shows it done, {PARALLELISM} tasks at a time. Lower ratio is better."
    )
    notes = _notes(mine, theirs, per_instance)
    return [Table("API calls per task to pause and resume", setup, rows, notes)]


def main(argv: list[str] | None = None) -> int:
    """Run this benchmark alone and print its table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--instances", type=int, default=4)
    parser.add_argument("--per-instance", type=int, default=50)
    args = parser.parse_args(argv)
    return print_alone(
        "operations",
        lambda url, logs: run(
            url, logs, instances_n=args.instances, per_instance=args.per_instance
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
