"""Waiting until tasks sync, from the command line: wait --until synced, bulk --until synced,
and the migration report, as real processes against real Redis, workers and the simulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from htap_sync.common.settings import Settings
from htap_sync.simulator import SimulatorConfig, SimulatorServer
from tests.conftest import request_data
from tests.integration.conftest import WorkerFactory
from tests.integration.harness import TOKEN
from tests.integration.test_cli import _read_jsonl, _write_csv, htap_sync

FOLLOW_FAST = {"follow_first_s": 0.2, "follow_interval_s": 0.5}


@pytest.fixture
def sim_config() -> SimulatorConfig:
    """Half the tasks fail to sync (seeded); tasks wait half a second."""
    return SimulatorConfig(token=TOKEN, seed=3, stage_wait_s=0.5, sync_fail_rate=0.5)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Follow rounds every half second."""
    return FOLLOW_FAST


def test_bulk_until_synced_then_report(
    tmp_path: Path, settings: Settings, simulator: SimulatorServer, start_worker: WorkerFactory
) -> None:
    """bulk --wait --until synced carries each task's sync state and exits 1 when some failed
    to sync; report counts syncing and failed tasks, with reasons, from either file."""
    rows = [request_data(task_name=f"synced_{i}") for i in range(8)]
    source = _write_csv(tmp_path / "migration.csv", rows)
    start_worker(concurrency=4)
    out = tmp_path / "results.jsonl"
    ran = htap_sync(settings, "bulk", str(source), "--wait", "--until", "synced", "-o", str(out))
    assert ran.returncode == 1, ran.stderr
    lines = _read_jsonl(out)
    states = [line["sync"]["state"] for line in lines]
    assert set(states) == {"syncing", "failed"}, states
    assert all(str(line["task_ref"]).endswith(f"/synced_{i}") for i, line in enumerate(lines))
    assert "failed to sync" in ran.stderr

    for path in (out, source):
        report = htap_sync(settings, "report", str(path), "--json")
        assert report.returncode == 1, report.stderr
        data = json.loads(report.stdout)
        assert data["counts"]["syncing"] == states.count("syncing")
        assert data["counts"]["failed"] == states.count("failed")
        failed = [t for t in data["tickets"] if t["kind"] == "failed"]
        assert failed and all(t["reason"] for t in failed)

    syncing = [str(line["ticket"]) for line in lines if line["sync"]["state"] == "syncing"]
    waited = htap_sync(settings, "wait", *syncing, "--until", "synced", "--json")
    assert waited.returncode == 0, waited.stderr
    assert {json.loads(x)["sync"]["state"] for x in waited.stdout.splitlines()} == {"syncing"}
    every = htap_sync(
        settings, "wait", *[str(line["ticket"]) for line in lines], "--until", "synced"
    )
    assert every.returncode == 1
    assert "sync=failed" in every.stdout


def test_wait_until_synced_times_out_with_exit_5(
    settings: Settings, simulator: SimulatorServer
) -> None:
    """With no worker, waiting until synced times out: exit 5, as any wait."""
    enq = htap_sync(settings, "enqueue", *_flags(request_data(task_name="never_followed")))
    assert enq.returncode == 0, enq.stderr
    ticket = enq.stdout.split()[0]
    waited = htap_sync(settings, "wait", ticket, "--until", "synced", "--timeout-s", "0.5")
    assert waited.returncode == 5, waited.stderr


def _flags(request: dict[str, str]) -> list[str]:
    return [x for k, v in request.items() for x in (f"--{k.replace('_', '-')}", v)]
