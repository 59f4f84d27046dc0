"""The htap-sync command line, run as a real process against real Redis, workers and simulator."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import redis

from htap_sync.common.settings import Settings
from htap_sync.simulator import SimulatorServer
from tests.conftest import VALID, request_data
from tests.integration.conftest import WorkerFactory
from tests.integration.harness import child_env


def htap_sync(
    settings: Settings | None, *args: str, env: dict[str, str] | None = None, timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``htap-sync ARGS`` in a child process with the test's settings in its environment."""
    full_env = child_env(settings, **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "htap_sync", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def _write_csv(path: Path, rows: list[dict[str, str]], extra_lines: Sequence[str] = ()) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(VALID))
        writer.writeheader()
        writer.writerows(rows)
        for line in extra_lines:
            handle.write(line + "\r\n")
    return path


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_bulk_accounts_for_every_row(
    tmp_path: Path, settings: Settings, simulator: SimulatorServer, start_worker: WorkerFactory
) -> None:
    """Good rows succeed with job ids; invalid, conflicting and malformed rows are reported by
    line, never queued, and never stop the others; the exit code says not all succeeded."""
    good = [request_data(task_name=f"bulk_{i}") for i in range(6)]
    rows = [
        *good[:3],
        request_data(task_name="bad name"),  # line 5: invalid
        good[1],  # line 6: the same request again: a duplicate, accepted
        request_data(task_name="bulk_2", target_database="elsewhere"),  # line 7: conflict
        *good[3:],  # lines 8-10
    ]
    path = _write_csv(tmp_path / "in.csv", rows, extra_lines=[",".join(VALID.values()) + ",x"])
    out = tmp_path / "out.jsonl"
    start_worker(concurrency=4)
    result = htap_sync(settings, "bulk", str(path), "--wait", "--timeout-s", "60", "-o", str(out))
    assert result.returncode == 1, result.stderr
    lines = _read_jsonl(out)
    assert [entry["line"] for entry in lines] == list(range(2, 12))
    by_line = {entry["line"]: entry for entry in lines}
    for line in (2, 3, 4, 6, 8, 9, 10):
        assert by_line[line]["state"] == "succeeded", by_line[line]
        assert by_line[line]["job_id"]
    assert by_line[6]["outcome"] == "duplicate"
    assert by_line[6]["ticket"] == by_line[3]["ticket"]
    assert by_line[5]["state"] == "invalid"
    assert [e["field"] for e in by_line[5]["errors"]] == ["task_name"]
    assert by_line[7]["state"] == "conflict"
    assert by_line[7]["ticket"] == by_line[4]["ticket"]
    assert by_line[11]["state"] == "invalid"  # the row with a surplus cell
    assert [e["field"] for e in by_line[11]["errors"]] == ["row"]
    assert simulator.state.created == 6
    assert "conflict 1, invalid 2" in result.stderr
    assert "succeeded 7, failed 0" in result.stderr


def test_bulk_again_sends_nothing_new(
    tmp_path: Path, settings: Settings, simulator: SimulatorServer, start_worker: WorkerFactory
) -> None:
    """A JSON Lines file that fully succeeded exits 0; running it again queues nothing."""
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(request_data(task_name=f"jl_{i}")) + "\n" for i in range(5)))
    start_worker(concurrency=2)
    first = htap_sync(settings, "bulk", str(path), "--wait", "--timeout-s", "60")
    assert first.returncode == 0, first.stderr
    assert [json.loads(x)["state"] for x in first.stdout.splitlines()] == ["succeeded"] * 5
    second = htap_sync(settings, "bulk", str(path), "--wait", "--timeout-s", "60")
    assert second.returncode == 0, second.stderr
    assert {json.loads(x)["outcome"] for x in second.stdout.splitlines()} == {"duplicate"}
    assert simulator.state.create_calls == 5


def test_bulk_without_wait_exits_on_acceptance(tmp_path: Path, settings: Settings) -> None:
    """Without --wait, bulk exits 0 once every row is queued, with no worker running."""
    path = _write_csv(tmp_path / "in.csv", [request_data(task_name=f"nw_{i}") for i in range(3)])
    result = htap_sync(settings, "bulk", str(path))
    assert result.returncode == 0, result.stderr
    assert [json.loads(x)["state"] for x in result.stdout.splitlines()] == ["queued"] * 3


def test_enqueue_status_and_wait(
    settings: Settings, simulator: SimulatorServer, start_worker: WorkerFactory
) -> None:
    """enqueue prints a ticket, wait exits 0 once it succeeded, status shows the job id."""
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in VALID.items()]
    queued = htap_sync(settings, "enqueue", *flags, "--json")
    assert queued.returncode == 0, queued.stderr
    ticket = json.loads(queued.stdout)["ticket"]
    assert json.loads(queued.stdout)["state"] == "queued"
    start_worker(concurrency=1)
    waited = htap_sync(settings, "wait", ticket, "--timeout-s", "60", "--json")
    assert waited.returncode == 0, waited.stderr
    shown = htap_sync(settings, "status", ticket, "--json")
    assert shown.returncode == 0
    status = json.loads(shown.stdout)
    assert status["state"] == "succeeded"
    assert (
        status["job_id"]
        == simulator.state.tasks(VALID["project_id"], VALID["instance_id"])[0].job_id
    )
    again = htap_sync(settings, "enqueue", *flags)
    assert (again.returncode, again.stdout.split()) == (0, [ticket, "duplicate"])


def test_enqueue_a_configured_request(
    tmp_path: Path, settings: Settings, simulator: SimulatorServer, start_worker: WorkerFactory
) -> None:
    """--selection-json (inline or @FILE) adds the selection; its errors exit 2 naming the
    field; the worker configures the task, then starts it."""
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in VALID.items()]
    selection = {
        "table_repl_config": {
            "repl_type": "include_tables",
            "repl_scope": "part",
            "tables": ["t1"],
        },
        "tables_configs": [{"table_name": "t1", "table_config": "order by id"}],
    }
    bad = {**selection, "table_repl_config": {"repl_type": "include", "repl_scope": "all"}}
    refused = htap_sync(settings, "enqueue", *flags, "--selection-json", json.dumps(bad))
    assert refused.returncode == 2 and "table_repl_config.repl_type" in refused.stderr
    broken = htap_sync(settings, "enqueue", *flags, "--selection-json", "{tables")
    assert broken.returncode == 2 and "--selection-json: not valid JSON" in broken.stderr
    path = tmp_path / "selection.json"
    path.write_text(json.dumps(selection), encoding="utf-8")
    queued = htap_sync(settings, "enqueue", *flags, "--selection-json", f"@{path}", "--json")
    assert queued.returncode == 0, queued.stderr
    shown = json.loads(queued.stdout)
    assert shown["request"]["tables_configs"] == selection["tables_configs"]
    start_worker(concurrency=1)
    waited = htap_sync(settings, "wait", shown["ticket"], "--timeout-s", "60")
    assert waited.returncode == 0, waited.stderr
    (task,) = simulator.state.tasks(VALID["project_id"], VALID["instance_id"])
    assert task.check is not None and task.check.tables_configs == selection["tables_configs"]


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["status", "tk_" + "0" * 32], 4, "not found"),
        (["wait", "tk_" + "0" * 32, "--timeout-s", "1"], 4, "not found"),
        (
            [
                "enqueue",
                *[
                    f"--{k.replace('_', '-')}={v}"
                    for k, v in request_data(target_database="x!").items()
                ],
            ],
            2,
            "target_database",
        ),
    ],
)
def test_exit_codes_scripts_can_trust(
    settings: Settings, args: list[str], code: int, needle: str
) -> None:
    """Unknown tickets exit 4; an invalid request exits 2 and names the field."""
    result = htap_sync(settings, *args)
    assert result.returncode == code, result.stderr
    assert needle in result.stdout + result.stderr


def test_conflict_exits_3(settings: Settings) -> None:
    """Enqueueing another request under a queued task name exits 3."""
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in VALID.items()]
    assert htap_sync(settings, "enqueue", *flags).returncode == 0
    other = [f"--{k.replace('_', '-')}={v}" for k, v in request_data(target_database="xyz").items()]
    assert htap_sync(settings, "enqueue", *other).returncode == 3


def test_bad_settings_stop_with_the_variable_named(settings: Settings) -> None:
    """A wrong setting exits 78 naming the variable; a worker without an endpoint likewise."""
    bad = htap_sync(settings, "status", "x", env={"HTAP_SYNC_REQUEST_TIMEOUT_S": "soon"})
    assert bad.returncode == 78
    assert "HTAP_SYNC_REQUEST_TIMEOUT_S" in bad.stderr
    no_endpoint = htap_sync(None, "worker", env={"HTAP_SYNC_REDIS_URL": str(settings.redis.url)})
    assert no_endpoint.returncode == 78
    assert "HTAP_SYNC_ENDPOINT" in no_endpoint.stderr


def test_unreachable_redis_exits_69(settings: Settings) -> None:
    """With nothing listening at the Redis URL, commands exit 69 instead of a traceback."""
    from htap_sync.devstack import free_port

    env = {"HTAP_SYNC_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    result = htap_sync(settings, "status", "tk_" + "0" * 32, env=env)
    assert result.returncode == 69, result.stderr
    assert "unreachable" in result.stderr
    assert "Traceback" not in result.stderr


def test_demo_shows_job_ids(tmp_path: Path) -> None:
    """`htap-sync demo` runs the sample of 50 through its own stack and shows 50 job ids."""
    out = tmp_path / "demo.jsonl"
    result = htap_sync(None, "demo", "-o", str(out), timeout_s=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = _read_jsonl(out)
    assert len(lines) == 50
    assert {entry["state"] for entry in lines} == {"succeeded"}
    assert all(str(entry["job_id"]) in result.stdout for entry in lines)
    assert "succeeded 50, failed 0" in result.stderr


def test_worker_refuses_an_evicting_redis(tmp_path: Path, settings: Settings) -> None:
    """A worker will not start on a Redis that may evict keys, unless told it may."""
    from htap_sync.devstack import RedisServer

    server = RedisServer(tmp_path).wait_ready()
    try:
        redis.Redis.from_url(server.url).config_set("maxmemory-policy", "allkeys-lru")
        env = {"HTAP_SYNC_REDIS_URL": server.url}
        refused = htap_sync(settings, "worker", env=env)
        assert refused.returncode == 78
        assert "HTAP_SYNC_REDIS_URL" in refused.stderr and "noeviction" in refused.stderr
        # With the operator's consent it starts (and is then stopped).
        from htap_sync.devstack import Service, wait_until

        full = {**os.environ, **settings.environ(), **env, "HTAP_SYNC_ALLOW_EVICTING_REDIS": "1"}
        worker = Service(
            "evicting-ok",
            [sys.executable, "-m", "htap_sync", "worker"],
            env=full,
            log_dir=tmp_path,
        )
        try:
            wait_until(lambda: "ready" in worker.log_tail(), timeout_s=60, what="worker")
        finally:
            assert worker.stop() in (0, -15)
    finally:
        server.stop()


def test_failed_lists_and_retry_redrives(
    settings: Settings, simulator: SimulatorServer, start_worker: WorkerFactory
) -> None:
    """`failed` shows failed tickets with their errors; `retry` sends them again."""
    flags = [
        f"--{k.replace('_', '-')}={v}" for k, v in request_data(task_name="fails_once").items()
    ]
    simulator.state.script(["in_progress"] * 3)  # three refusals exhaust max_attempts=3
    ticket = json.loads(htap_sync(settings, "enqueue", *flags, "--json").stdout)["ticket"]
    worker = start_worker(concurrency=1)
    assert htap_sync(settings, "wait", ticket, "--timeout-s", "60").returncode == 1
    listed = htap_sync(settings, "failed", "--json")
    assert listed.returncode == 0
    (entry,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (entry["ticket"], entry["state"]) == (ticket, "failed")
    assert entry["error"]["error_code"] == "DBS.200047"
    assert [a["http_status"] for a in entry["history"]] == [409, 409, 409]

    again = htap_sync(settings, "retry", "--all-failed", "--json")
    assert again.returncode == 0
    assert json.loads(again.stdout) == {"ticket": ticket, "outcome": "redriven"}
    assert htap_sync(settings, "wait", ticket, "--timeout-s", "60").returncode == 0
    assert htap_sync(settings, "failed", "--json").stdout == ""
    assert htap_sync(settings, "retry", "tk_" + "0" * 32).returncode == 4
    assert worker.alive()
