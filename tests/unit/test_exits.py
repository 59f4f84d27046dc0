"""Exits a supervisor or a script can trust: a Redis URL whose path is no database number is
refused (78), a worker stopped by an error exits non-zero with one line, a busy port is 71,
and an error is one line however long (no wrapping at 80 columns off a terminal)."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from htap_sync.cli import main
from htap_sync.common.errors import SettingsError
from htap_sync.common.settings import load_settings
from htap_sync.worker.main import Stopped


@pytest.fixture(autouse=True)
def _here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env


@pytest.mark.parametrize("path", ["/abc", "/1/extra", "/1/", "/%31", "/-1"])
def test_a_redis_url_path_that_is_no_database_is_refused(path: str) -> None:
    """redis-py would read these as database 0: refused, naming the variable."""
    with pytest.raises(SettingsError, match="HTAP_SYNC_REDIS_URL: the path must be a database"):
        load_settings({"redis_url": f"redis://127.0.0.1:6379{path}"}, env_file=None)


@pytest.mark.parametrize(("path", "db"), [("", "/0"), ("/", "/0"), ("/3", "/3"), ("/15", "/15")])
def test_a_database_number_or_none_is_accepted(path: str, db: str) -> None:
    """No path (or a bare /) is database 0; a number is that database."""
    url = load_settings({"redis_url": f"redis://h:6379{path}"}, env_file=None).redis.url
    assert (url.path or "/0") == db


@pytest.mark.parametrize("command", [["status", "tk_" + "0" * 32], ["worker"], ["inspect"]])
def test_the_cli_exits_78_for_a_database_that_is_no_number(command: list[str]) -> None:
    """Every command stops before doing anything: exit 78, the variable named."""
    env = {"HTAP_SYNC_REDIS_URL": "redis://127.0.0.1:6379/abc"}
    ran = CliRunner().invoke(main, command, env=env)
    assert ran.exit_code == 78, ran.output
    assert "HTAP_SYNC_REDIS_URL" in ran.output


def test_the_worker_notes_the_error_that_stopped_it() -> None:
    """Celery's "Unrecoverable error" line (which its worker_main swallows with the exit code)
    is noted, and the worker's exit code is read back; a clean stop is 0."""
    stopped = Stopped()
    assert stopped.exitcode == 0
    try:
        raise RuntimeError("consumer gone")
    except RuntimeError:
        record = logging.LogRecord(
            "celery.worker", logging.CRITICAL, "", 0, "Unrecoverable error: %r", (), None
        )
        record.exc_info = sys.exc_info()
    assert stopped.note(record) is True
    assert stopped.error == "RuntimeError: consumer gone"
    assert stopped.exitcode == 1
    stopped.keep(instance=type("Worker", (), {"exitcode": 2})())
    assert stopped.exitcode == 2


def test_a_worker_stopped_by_an_error_exits_non_zero_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``htap-sync worker`` ends with the worker's exit code and one line naming the error."""
    import htap_sync.worker.main as worker_main

    def stopped_by_error(*_: Any, **__: Any) -> Stopped:
        stopped = Stopped()
        stopped.error = "ValueError: bad consumer"
        return stopped

    monkeypatch.setattr(worker_main, "run_worker", stopped_by_error)
    ran = CliRunner().invoke(main, ["worker"])
    assert ran.exit_code == 1
    assert ran.output.strip().splitlines() == [
        "error: the worker stopped on ValueError: bad consumer"
    ]


def test_the_ingress_on_a_busy_port_exits_71_with_one_line() -> None:
    """Another process listens on the port: exit 71 (not 3, our "conflict"), one line."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"HTAP_SYNC_API_AUTH": "off", "HTAP_SYNC_REDIS_URL": "redis://127.0.0.1:1/0"}
        ran = CliRunner().invoke(main, ["api", "--port", str(port)], env=env)
    assert ran.exit_code == 71, ran.output
    assert ran.output.strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]


def test_an_error_is_not_wrapped_off_a_terminal() -> None:
    """Off a terminal, an error line over 80 columns stays one line (grep, CI logs)."""
    env = {**os.environ, "HTAP_SYNC_REDIS_URL": "redis://127.0.0.1:6379/1/extra"}
    env.pop("COLUMNS", None)
    ran = subprocess.run(
        [sys.executable, "-m", "htap_sync", "status", "tk_" + "0" * 32],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 78
    (line,) = [x for x in ran.stderr.splitlines() if "HTAP_SYNC_REDIS_URL" in x]
    assert len(line) > 80
    assert line.strip().endswith("or nothing")


def test_with_json_logs_an_error_is_a_json_line() -> None:
    """HTAP_SYNC_LOG_FORMAT=json: the error of a command is one JSON log line with its exit
    code (a service's stderr is its log)."""
    import json

    import htap_sync.cli.base as base

    try:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            env = {
                "HTAP_SYNC_API_AUTH": "off",
                "HTAP_SYNC_REDIS_URL": "redis://127.0.0.1:1/0",
                "HTAP_SYNC_LOG_FORMAT": "json",
            }
            ran = CliRunner().invoke(main, ["api", "--port", str(port)], env=env)
    finally:
        base._errors_as_json["on"] = False
    assert ran.exit_code == 71, ran.output
    (line,) = ran.output.strip().splitlines()
    data = json.loads(line)
    assert (data["level"], data["exit_code"]) == ("error", 71)
    assert data["msg"] == f"cannot listen on 127.0.0.1:{port}: Address already in use"
