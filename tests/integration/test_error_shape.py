"""One error shape everywhere: a conflict reads the same from the CLI, bulk and the ingress."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from htap_sync.common.settings import Settings
from htap_sync.producer.api import Producer
from htap_sync.producer.ingress import make_ingress
from tests.conftest import request_data
from tests.integration.harness import child_env
from tests.integration.ingress.served import Served

KEY = "error-shape-key"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """An ingress key; nothing else changes."""
    return {"api_keys": KEY}


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "htap_sync", *args],
        env=child_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_conflict_has_one_error_shape_in_cli_bulk_and_ingress(
    settings: Settings, producer: Producer, tmp_path: Path
) -> None:
    """`enqueue --json`, `bulk` and the ingress (one object or a list) report a conflict as the
    same ``{field, rule, message}`` errors."""
    held = producer.enqueue(request_data(task_name="shape_1"))
    other = request_data(task_name="shape_1", target_database="another_db")
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in other.items()]

    enqueued = _cli(settings, "enqueue", "--json", *flags)
    assert enqueued.returncode == 3, enqueued.stderr
    from_enqueue = json.loads(enqueued.stdout)

    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps(other) + "\n")
    bulked = _cli(settings, "bulk", str(rows), "--no-progress")
    (from_bulk,) = [json.loads(line) for line in bulked.stdout.splitlines() if line]

    with Served(make_ingress(settings, producer)) as served, served.client({"X-API-Key": KEY}) as c:
        one = c.post("/v1/replications", json=other)
        many = c.post("/v1/replications", json=[other])
    assert (one.status_code, many.status_code) == (409, 409)
    (from_list,) = many.json()["results"]

    expected = [
        {
            "field": "task_name",
            "rule": "another request holds this task name (queued)",
            "message": "task_name: another request holds this task name (queued)",
        }
    ]
    assert from_enqueue["errors"] == expected and from_enqueue["ticket"] == held.ticket
    assert from_bulk["errors"] == expected and from_bulk["state"] == "conflict"
    assert one.json()["errors"] == expected and one.json()["ticket"] == held.ticket
    assert from_list["errors"] == expected
