"""Bulk migrations at scale: 10,000 rows, re-runs, and backpressure, on real Redis."""

from __future__ import annotations

import csv
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from htap_sync.common.models import parse_request
from htap_sync.common.settings import Settings
from htap_sync.devstack import wait_until
from htap_sync.producer.api import Producer
from htap_sync.simulator import SimulatorServer
from tests.conftest import VALID, request_data
from tests.integration.conftest import WorkerFactory
from tests.integration.harness import child_env

COLUMNS = list(VALID)


def _generate(path: Path, rows: int, seed: int) -> dict[str, int]:
    """A CSV of ``rows`` rows with invalid, duplicate and conflicting rows mixed in."""
    rng = random.Random(seed)
    kinds = {"good": 0, "invalid": 0, "duplicate": 0, "conflict": 0}
    good: list[dict[str, str]] = []
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for i in range(rows):
            roll = rng.random()
            if roll < 0.02:
                row, kind = request_data(task_name=f"bad name {i}"), "invalid"
            elif roll < 0.04 and good:
                row, kind = rng.choice(good), "duplicate"
            elif roll < 0.05 and good:
                row, kind = {**rng.choice(good), "target_database": f"other_{i}"}, "conflict"
            else:
                row, kind = (
                    request_data(task_name=f"bulk_{i:05d}", source_database=f"db_{i:05d}"),
                    "good",
                )
                good.append(row)
            kinds[kind] += 1
            writer.writerow(row)
    return kinds


def _bulk(
    settings: Settings, *args: str, timeout_s: float = 600
) -> subprocess.CompletedProcess[str]:
    env = child_env(settings)
    return subprocess.run(
        [sys.executable, "-m", "htap_sync", "bulk", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


class TestTenThousandRows:
    """A generated migration file of 10,000 rows."""

    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        """Plenty of rate for a big run."""
        return {"rate_limit_per_s": 5000, "rate_burst": 1000}

    @pytest.mark.timeout(600)
    def test_every_row_is_accounted_for_and_a_rerun_sends_nothing_new(
        self,
        tmp_path: Path,
        settings: Settings,
        simulator: SimulatorServer,
        start_worker: WorkerFactory,
    ) -> None:
        """Each of 10,000 rows gets one output line in order; the summary adds up; after every
        ticket succeeded, running the same file again creates nothing."""
        source = tmp_path / "migration.csv"
        kinds = _generate(source, 10_000, seed=42)
        out = tmp_path / "first.jsonl"
        workers = [start_worker(concurrency=8), start_worker(concurrency=8)]
        first = _bulk(settings, str(source), "--wait", "--timeout-s", "500", "-o", str(out))
        assert first.returncode == 1, first.stderr[-2000:]  # invalid and conflicting rows
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        assert [entry["line"] for entry in lines] == list(range(2, 10_002))
        states: dict[str, int] = {}
        for entry in lines:
            states[entry["state"]] = states.get(entry["state"], 0) + 1
        assert states == {
            "succeeded": kinds["good"] + kinds["duplicate"],
            "invalid": kinds["invalid"],
            "conflict": kinds["conflict"],
        }
        assert simulator.state.created == kinds["good"]
        assert f"conflict {kinds['conflict']}, invalid {kinds['invalid']}" in first.stderr
        assert f"duplicate {kinds['duplicate']}" in first.stderr

        calls = simulator.state.create_calls
        again = _bulk(settings, str(source), "-o", str(tmp_path / "second.jsonl"))
        assert again.returncode == 1  # the same bad rows are still bad
        second = [json.loads(line) for line in (tmp_path / "second.jsonl").read_text().splitlines()]
        assert {e.get("outcome") for e in second if "ticket" in e and e["state"] != "conflict"} == {
            "duplicate"
        }
        assert all(w.alive() for w in workers)
        assert simulator.state.create_calls == calls  # nothing new reached the API


class TestBackpressure:
    """A small queue limit and no worker: bulk waits, then resumes when a worker drains it."""

    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        """At most 50 messages waiting in the queue, one ticket each (the limit counts
        messages; batches are covered in test_batches.py)."""
        return {"max_queue_depth": 50, "batch_size": 1}

    @pytest.mark.timeout(180)
    def test_bulk_waits_for_the_queue_to_drain(
        self, tmp_path: Path, settings: Settings, producer: Producer, start_worker: WorkerFactory
    ) -> None:
        """With no worker the queue fills to the limit and bulk blocks; a worker lets it finish."""
        source = tmp_path / "in.jsonl"
        source.write_text(
            "".join(json.dumps(request_data(task_name=f"bp_{i:03d}")) + "\n" for i in range(300))
        )
        env = child_env(settings)
        proc = subprocess.Popen(
            [sys.executable, "-m", "htap_sync", "bulk", str(source)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_until(lambda: producer.queue_depth() == 50, timeout_s=60, what="a full queue")
            assert proc.poll() is None  # 250 rows remain: it is waiting, not done
            assert producer.queue_depth() == 50  # and it did not overfill the queue
            start_worker(concurrency=4)
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 0, err
        assert len(out.splitlines()) == 300


def test_enqueue_many_reports_each_item(producer: Producer) -> None:
    """The Python API takes many requests in one call and answers per item, in order."""
    items: list[Any] = [
        request_data(task_name="many_a"),
        request_data(task_name="x"),  # invalid
        request_data(task_name="many_a"),  # the same again
        request_data(task_name="many_a", target_database="elsewhere"),  # conflict
        parse_request(request_data(task_name="many_b")),
    ]
    results = list(producer.enqueue_many(items, batch_size=2))
    assert [(r.index, r.status) for r in results] == [
        (0, "queued"),
        (1, "invalid"),
        (2, "duplicate"),
        (3, "conflict"),
        (4, "queued"),
    ]
    assert results[0].ticket == results[2].ticket == results[3].ticket
    assert results[1].ticket is None and results[1].errors[0]["field"] == "task_name"
    assert producer.queue_depth() == 1  # one batch message holds both queued tickets


def test_backpressure_in_process_waits_and_resumes(settings: Settings) -> None:
    """With an injected sleep that drains the queue, enqueue_many waits exactly when full."""
    from htap_sync.common.connections import make_redis
    from htap_sync.common.fair_feed import tenant_queue
    from htap_sync.common.keys import Keys

    limited = settings.model_copy(update={"max_queue_depth": 10, "batch_size": 1})
    client = make_redis(limited)
    sleeps: list[int] = []

    # Bulk messages wait in their tenant's queue (its project's), which backpressure counts.
    waiting = Keys(limited.key_prefix).queue(tenant_queue(limited, request_data()["project_id"]))

    def drain(_: float) -> None:
        sleeps.append(client.llen(waiting))
        client.delete(waiting)

    producer = Producer(limited, redis_client=client, sleep=drain)
    results = list(producer.enqueue_many(request_data(task_name=f"ip_{i:02d}") for i in range(35)))
    assert [r.status for r in results] == ["queued"] * 35
    assert sleeps == [10, 10, 10]  # waited before each batch that would not fit
    assert producer.queue_depth() == 5
