"""What operators see: Prometheus metrics scraped from real worker processes, JSON logs."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from htap_sync.devstack import free_port, wait_until
from htap_sync.producer.api import Producer
from htap_sync.simulator import SimulatorServer
from tests.conftest import request_data
from tests.integration.conftest import WorkerFactory
from tests.integration.harness import TOKEN, child_env, wait_for


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return sum(
        v
        for (n, lab), v in samples.items()
        if n == name and all(dict(lab).get(k) == w for k, w in labels.items())
    )


def _up(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize("pool", ["threads", "prefork"])
@pytest.mark.timeout(120)
def test_metrics_from_a_real_worker(
    pool: str, producer: Producer, simulator: SimulatorServer, start_worker: WorkerFactory
) -> None:
    """Calls by outcome and status, retries, reconciliations and the fleet gauges are exported,
    and add up across the pool's processes."""
    simulator.state.script(["created_then_500", "fail"])  # one lost answer, one plain 500
    port = free_port()
    receipts = [producer.enqueue(request_data(task_name=f"obs_{i:02d}")) for i in range(20)]
    worker = start_worker(concurrency=2, pool=pool, metrics_port=port, log_format="json")
    try:
        statuses = wait_for(producer, [r.ticket for r in receipts], workers=[worker])
        assert {s.state.value for s in statuses.values()} == {"succeeded"}
        wait_until(lambda: _up(port), timeout_s=30, what="the metrics endpoint")
        samples = _scrape(port)
        assert _value(samples, "htap_sync_api_calls_total", api="create", outcome="ok") == 19
        assert _value(samples, "htap_sync_api_calls_total", api="create", status="500") == 2
        assert _value(samples, "htap_sync_reconciliations_total", result="found") == 1
        assert _value(samples, "htap_sync_reconciliations_total", result="absent") == 1
        assert _value(samples, "htap_sync_retries_total", error="ServerError") == 2
        assert _value(samples, "htap_sync_enqueue_to_result_seconds_count", state="succeeded") == 20
        assert _value(samples, "htap_sync_api_latency_seconds_count", api="create") == 21
        assert ("htap_sync_queue_depth", ()) in samples
        assert _value(samples, "htap_sync_effective_rate_per_second", api="create") > 0
    finally:
        assert worker.stop() in (0, -15)
    lines = [
        json.loads(line)
        for line in worker.log_path.read_text().splitlines()
        if line.startswith("{")
    ]
    calls = [e for e in lines if e.get("api") == "create"]
    assert len(calls) == 21
    assert {e["outcome"] for e in calls} == {"ok", "ServerError"}
    assert all(e["ticket"].startswith("tk_") and "request_id" in e for e in calls)
    assert TOKEN not in worker.log_path.read_text()


@pytest.fixture
def sim_config() -> Any:
    """A simulator that knows no instance ffff...ffff."""
    from htap_sync.simulator import SimulatorConfig

    return SimulatorConfig(token=TOKEN, seed=9, unknown_instances=frozenset({"f" * 36}))


def test_inspect_describes_a_running_fleet(
    producer: Producer, simulator: SimulatorServer, start_worker: WorkerFactory
) -> None:
    """`htap-sync inspect --json` shows tickets by state, the failed and waiting ones, the
    effective rate and the breaker, as a fleet runs."""
    import subprocess
    import sys

    simulator.state.script(["ok"] * 5 + ["throttle:300"])  # the sixth create waits 300 s
    ok = [producer.enqueue(request_data(task_name=f"insp_{i}")) for i in range(5)]
    worker = start_worker(concurrency=1)
    wait_for(producer, [r.ticket for r in ok], workers=[worker])
    waiting = producer.enqueue(request_data(task_name="insp_waits"))
    wait_until(
        lambda: producer.status(waiting.ticket).state.value == "retrying",
        timeout_s=30,
        what="the throttled ticket",
    )
    # Another project: its own bucket, which the 429 above does not hold.
    failing = producer.enqueue(
        request_data(task_name="insp_fails", instance_id="f" * 36, project_id="e" * 32)
    )
    simulator.state.script([])
    env = child_env(producer.settings)

    def inspect() -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-m", "htap_sync", "inspect", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return dict(json.loads(done.stdout))

    wait_until(lambda: inspect()["tickets"]["failed"] == 1, timeout_s=30, what="the failure")
    view = inspect()
    assert view["tickets"] == {
        "queued": 0,
        "running": 0,
        "retrying": 1,
        "succeeded": 5,
        "failed": 1,
    }
    assert view["failed"] == 1
    assert view["delayed"]["depth"] == 1
    assert 200 < view["delayed"]["next_due_in_s"] <= 300
    (create,) = [
        r for r in view["rate_limits"] if r["api"] == "create" and r["project_id"] != "e" * 32
    ]
    assert create["effective_per_s"] < create["configured_per_s"]  # the 429 slowed the fleet
    assert create["blocked_for_s"] > 200  # and Retry-After holds the bucket
    assert view["queue"]["depth"] == 0
    assert failing.ticket != waiting.ticket
