"""The metrics as documented: the README's table from the code, the fleet gauges, the dashboard."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from htap_sync.metrics_table import catalogue, render_metrics_table
from htap_sync.worker.metrics import FLEET, FleetCollector, fleet_families

ROOT = Path(__file__).resolve().parents[2]


def _view(breaker_state: str = "closed", open_for_s: float = 0.0) -> dict[str, Any]:
    return {
        "queue": {"depth": 3},
        "delayed": {"depth": 2},
        "failed": 1,
        "rate_limits": [
            {
                "endpoint": "api.example",
                "project_id": "p" * 32,
                "api": "create",
                "configured_per_s": 10.0,
                "effective_per_s": 5.0,
                "blocked_for_s": 1.5,
            }
        ],
        "breakers": [
            {
                "endpoint": "api.example",
                "state": breaker_state,
                "opened": 2,
                "open_for_s": open_for_s,
            }
        ],
    }


def _scrape(view: dict[str, Any]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(FleetCollector(lambda: view))
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_table_lists_every_metric_once_with_its_labels() -> None:
    """The rendered table has one row per metric the code defines, with its type and labels."""
    table = render_metrics_table()
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert len(rows) == len(catalogue()) == len({name for name, *_ in catalogue()})
    by_name = {row.split("`")[1]: row for row in rows}
    assert (
        "| counter | `api`, `outcome`, `status` | each worker |"
        in (by_name["htap_sync_api_calls_total"])
    )
    assert (
        "| gauge | `endpoint`, `state` | one worker (lease) |"
        in (by_name["htap_sync_breaker_state"])
    )
    assert "`method`, `route`, `status` | ingress" in by_name["htap_sync_ingress_requests_total"]
    assert "(`_bucket`, `_sum`, `_count`)" in by_name["htap_sync_wait_seconds"]


def test_python_m_prints_the_same_table() -> None:
    """`python -m htap_sync.metrics_table` prints exactly what render_metrics_table() returns."""
    done = subprocess.run(
        [sys.executable, "-m", "htap_sync.metrics_table"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout == render_metrics_table()


def test_fleet_gauges_show_configured_and_effective_rates() -> None:
    """Depths, failed tickets, configured and effective rates and the Retry-After block are
    exported with their labels."""
    samples = _scrape(_view())
    labels = (("api", "create"), ("endpoint", "api.example"), ("project_id", "p" * 32))
    assert samples[("htap_sync_queue_depth", ())] == 3
    assert samples[("htap_sync_delayed_depth", ())] == 2
    assert samples[("htap_sync_failed_tickets", ())] == 1
    assert samples[("htap_sync_configured_rate_per_second", labels)] == 10.0
    assert samples[("htap_sync_effective_rate_per_second", labels)] == 5.0
    assert samples[("htap_sync_rate_blocked_seconds", labels)] == 1.5
    assert samples[("htap_sync_breaker_opened_total", (("endpoint", "api.example"),))] == 2


@pytest.mark.parametrize(
    ("stored", "open_for_s", "shown"),
    [
        ("closed", 0.0, "closed"),
        ("open", 12.0, "open"),
        ("open", 0.0, "half_open"),
        ("half_open", 0.0, "half_open"),
    ],
)
def test_breaker_state_is_one_hot_and_shows_half_open(
    stored: str, open_for_s: float, shown: str
) -> None:
    """Exactly one breaker state reads 1; an open breaker past its cool-down reads half_open."""
    samples = _scrape(_view(stored, open_for_s))
    states = {
        dict(labels)["state"]: value
        for (name, labels), value in samples.items()
        if name == "htap_sync_breaker_state"
    }
    assert states == {s: (1.0 if s == shown else 0.0) for s in ("closed", "open", "half_open")}


def test_a_failing_read_exports_no_fleet_gauge() -> None:
    """A scrape while Redis is unreachable still answers, without fleet gauges."""

    def broken() -> dict[str, Any]:
        raise ConnectionError("redis down")

    registry = CollectorRegistry()
    registry.register(FleetCollector(broken))
    assert b"htap_sync_queue_depth" not in generate_latest(registry)


def test_fleet_families_follow_the_declared_order() -> None:
    """fleet_families() builds exactly the families FLEET declares, in that order."""
    assert [f.name for f in fleet_families(_view())] == [name for name, *_ in FLEET]


def test_dashboard_and_scrape_config_use_real_metrics() -> None:
    """Every metric the shipped Grafana dashboard queries is one the code exports."""
    known = set()
    for name, kind, *_ in catalogue():
        base = name.removesuffix("_total")
        known |= {base, f"{base}_total"} if kind == "counter" else {name}
        if kind == "histogram":
            known |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    dashboard = json.loads((ROOT / "monitoring/grafana/dashboards/htap-sync.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {m for expr in exprs for m in re.findall(r"htap_sync_[a-z_]+", expr)}
    assert used and used <= known, used - known
