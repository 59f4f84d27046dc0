"""The shipped alert rules: valid for Prometheus (``promtool check rules``), firing when they
should (``promtool test rules``), on metrics the code exports, loaded by the compose
Prometheus; and the dashboard shows sync failures."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from htap_sync.metrics_table import catalogue

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "monitoring"
ALERTS = {
    "HtapSyncTicketsFailed",
    "HtapSyncTasksFailedToSync",
    "HtapSyncBreakerOpen",
    "HtapSyncQueueNotDraining",
    "HtapSyncNoWorker",
}


def _promtool() -> str:
    """promtool on PATH, or the one `make install` put beside the test's Python."""
    beside = Path(sys.executable).parent / "promtool"
    found = shutil.which("promtool") or (str(beside) if beside.is_file() else None)
    if found is None:
        pytest.skip(
            "promtool not found (neither on PATH nor in .venv/bin): `make install` takes it"
            " from Debian's prometheus package where apt is available"
        )
    return found


def _promtool_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_promtool(), *args],
        cwd=MONITORING,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _rules() -> list[dict[str, object]]:
    groups = yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _known_metrics() -> set[str]:
    known = {"up"}
    for name, kind, *_ in catalogue():
        base = name.removesuffix("_total")
        known |= {base, f"{base}_total"} if kind == "counter" else {name}
        if kind == "histogram":
            known |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return known


def test_promtool_finds_the_rules_valid() -> None:
    """``promtool check rules monitoring/alerts.yml`` passes, with every rule counted."""
    ran = _promtool_run("check", "rules", "alerts.yml")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in ran.stdout


def test_each_alert_fires_when_it_should() -> None:
    """``promtool test rules``: each alert fires on its series, and not before (or not at all
    for a queue that drains)."""
    ran = _promtool_run("test", "rules", "alerts_test.yml")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    tested = set(re.findall(r"alertname: (\w+)", (MONITORING / "alerts_test.yml").read_text()))
    assert tested == ALERTS


def test_the_alerts_cover_what_operators_need_on_real_metrics() -> None:
    """Failed tickets, sync failures, an open breaker, an undrained queue and no worker, each
    with a severity and a summary, on metrics the code exports."""
    rules = _rules()
    assert {r["alert"] for r in rules} == ALERTS
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical")  # type: ignore[index]
        assert rule["annotations"]["summary"]  # type: ignore[index]
    used = {m for r in rules for m in re.findall(r"\b(htap_sync_[a-z_]+|up)\b", str(r["expr"]))}
    assert used <= _known_metrics(), used - _known_metrics()


def test_the_compose_prometheus_loads_the_rules() -> None:
    """prometheus.yml names alerts.yml, and compose mounts it beside the config."""
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    volumes = compose["services"]["prometheus"]["volumes"]
    assert "./monitoring/alerts.yml:/etc/prometheus/alerts.yml:ro" in volumes


def test_the_dashboard_shows_sync_failures() -> None:
    """A panel of the Grafana dashboard plots failed tickets and tasks that failed to sync."""
    dashboard = json.loads((MONITORING / "grafana/dashboards/htap-sync.json").read_text())
    exprs = {
        panel["title"]: " ".join(t["expr"] for t in panel["targets"])
        for panel in dashboard["panels"]
    }
    (title,) = [t for t, e in exprs.items() if 'htap_sync_followed_total{state=~"failed' in e]
    assert 'htap_sync_enqueue_to_result_seconds_count{state="failed"}' in exprs[title]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
