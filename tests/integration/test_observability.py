"""What operators see: Prometheus metrics scraped from real worker processes, JSON logs."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from htap_sync.common.settings import Settings
from htap_sync.devstack import Service, free_port, http_ready, wait_until
from htap_sync.producer.api import Producer
from htap_sync.simulator import SimulatorServer
from tests.conftest import request_data
from tests.integration.conftest import WorkerFactory
from tests.integration.harness import TOKEN, child_env, wait_for

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _scrape(port: int) -> Samples:
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
        assert _value(samples, "htap_sync_api_calls_total", outcome="server_error") == 2
        assert _value(samples, "htap_sync_reconciliations_total", result="found") == 1
        assert _value(samples, "htap_sync_reconciliations_total", result="absent") == 1
        assert _value(samples, "htap_sync_retries_total", error="ServerError") == 2
        assert _value(samples, "htap_sync_enqueue_to_result_seconds_count", state="succeeded") == 20
        assert _value(samples, "htap_sync_api_latency_seconds_count", api="create") == 21
        assert ("htap_sync_queue_depth", ()) in samples
        assert _value(samples, "htap_sync_effective_rate_per_second", api="create") > 0
    finally:
        assert worker.stop() in (0, -15)
    # Every line the worker wrote is one JSON object: no banner, no text warning.
    lines = [json.loads(line) for line in worker.log_path.read_text().splitlines()]
    calls = [e for e in lines if e.get("api") == "create"]
    assert len(calls) == 21
    assert {e["outcome"] for e in calls} == {"ok", "server_error"}
    assert {e["http_status"] for e in calls if e["outcome"] == "ok"} == {200}
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


API_KEY = "observability-key"


def _ingress(settings: Settings, log_dir: Path, api_port: int, metrics_port: int) -> Service:
    env = child_env(
        settings,
        HTAP_SYNC_API_KEYS=API_KEY,
        HTAP_SYNC_METRICS_PORT=str(metrics_port),
        HTAP_SYNC_LOG_FORMAT="json",
    )
    argv = [sys.executable, "-m", "htap_sync", "api", "--port", str(api_port)]
    service = Service("ingress", argv, env=env, log_dir=log_dir)
    wait_until(
        lambda: service.alive() and http_ready(f"http://127.0.0.1:{api_port}/healthz"),
        timeout_s=30,
        what="the ingress",
    )
    return service


def _json_lines(service: Service) -> list[dict[str, Any]]:
    text = service.log_path.read_text()
    assert "\x1b" not in text and "color_message" not in text
    return [json.loads(line) for line in text.splitlines()]  # every line: JSON


@pytest.mark.timeout(150)
def test_two_workers_and_the_ingress_serve_prometheus_metrics(
    settings: Settings,
    producer: Producer,
    simulator: SimulatorServer,
    start_worker: WorkerFactory,
    tmp_path: Path,
) -> None:
    """Two worker processes and the ingress serve Prometheus text: counters add up across the
    workers, the fleet gauges come from exactly one of them, waits are timed, and the ingress
    counts answers by route on a metrics port apart from its API."""
    simulator.state.script(["throttle:15"])  # the first create: 429, Retry-After 15 s
    ports = [free_port(), free_port()]
    workers = [start_worker(concurrency=2, metrics_port=p, log_format="json") for p in ports]
    api_port, metrics_port = free_port(), free_port()
    ingress = _ingress(settings, tmp_path, api_port, metrics_port)
    ids = []
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{api_port}", headers={"X-API-Key": API_KEY}, timeout=10
        ) as api:

            def post(name: str) -> str:
                answer = api.post("/v1/replications", json=request_data(task_name=name))
                assert answer.status_code == 202, answer.text
                ids.append(answer.headers["X-Request-Id"])
                return str(answer.json()["ticket"])

            first = post("obs2_first")
            wait_until(
                lambda: producer.status(first).state.value == "retrying",
                timeout_s=30,
                what="the throttled ticket",
            )
            # The bucket is shut for 15 s: these wait without an attempt, in the delayed set.
            tickets = [first, *(post(f"obs2_{i}") for i in range(5))]
            statuses = wait_for(producer, tickets, workers=workers, timeout_s=90)
            assert {s.state.value for s in statuses.values()} == {"succeeded"}
            for ticket in tickets:
                assert api.get(f"/v1/replications/{ticket}").status_code == 200
            assert api.get("/metrics").status_code == 404  # only on the metrics port
            docs = api.get("/docs")
            assert docs.status_code == 200 and "openapi.json" in docs.text
            assert "SwaggerUIBundle" in docs.text
        wait_until(lambda: all(_up(p) for p in ports), timeout_s=30, what="the workers' metrics")
        _check_worker_metrics([_scrape(p) for p in ports], [_scrape(p) for p in reversed(ports)])
        _check_ingress_metrics(_scrape(metrics_port))
    finally:
        ingress.stop()
    logged = {e["request_id"]: e for e in _json_lines(ingress) if e.get("route")}
    assert {logged[i]["route"] for i in ids} == {"/v1/replications"}
    for worker in workers:
        assert worker.stop() in (0, -15)
        received = [e for e in _json_lines(worker) if str(e["msg"]).endswith("received")]
        assert received and all(e["task_id"] and "obs2_" not in str(e) for e in received)


def _check_worker_metrics(scrapes: list[Samples], again: list[Samples]) -> None:
    def total(name: str, **labels: str) -> float:
        return sum(_value(s, name, **labels) for s in scrapes)

    assert total("htap_sync_api_calls_total", api="create") == 7  # one 429, then six created
    assert total("htap_sync_api_calls_total", api="create", status="429") == 1
    assert total("htap_sync_deliveries_total", kind="finished") == 6
    waits = total("htap_sync_wait_seconds_count", reason="rate")
    assert waits >= 5 and waits == total("htap_sync_waits_total", reason="rate")
    exporters = [i for i, s in enumerate(scrapes) if ("htap_sync_queue_depth", ()) in s]
    assert len(exporters) == 1, "fleet gauges must come from one worker only"
    (holder,) = exporters
    assert [i for i, s in enumerate(reversed(again)) if ("htap_sync_queue_depth", ()) in s] == [
        holder
    ]
    fleet = scrapes[holder]
    assert _value(fleet, "htap_sync_configured_rate_per_second", api="create") == 1000
    assert 0 < _value(fleet, "htap_sync_effective_rate_per_second", api="create") < 1000
    assert _value(fleet, "htap_sync_breaker_state", state="closed") == 1
    assert _value(fleet, "htap_sync_breaker_state", state="half_open") == 0


def _check_ingress_metrics(samples: Samples) -> None:
    def answers(route: str, method: str, status: str) -> float:
        return _value(
            samples, "htap_sync_ingress_requests_total", route=route, method=method, status=status
        )

    assert answers("/v1/replications", "POST", "202") == 6
    assert answers("/v1/replications/{ticket}", "GET", "200") >= 6
    assert answers("unmatched", "GET", "404") == 1
    assert answers("/docs", "GET", "200") == 1
    assert _value(samples, "htap_sync_ingress_latency_seconds_count", route="/healthz") >= 1
    assert not any(name.startswith("htap_sync_api_calls") for name, _ in samples)
