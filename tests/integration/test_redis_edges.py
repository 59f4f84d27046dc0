"""Redis settings at the edges: a database the server lacks, and a password never printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from htap_sync.common.settings import Settings
from htap_sync.devstack import free_port
from tests.conftest import VALID
from tests.integration.test_cli import _write_csv, htap_sync

SECRET = "s3cret-Passw0rd"


@pytest.mark.parametrize(
    "args",
    [
        ("status", "tk_" + "0" * 32),
        ("wait", "tk_" + "0" * 32),
        ("inspect",),
        ("bulk", "FILE"),
        ("worker",),
        ("api", "--port", "0"),
    ],
)
def test_a_database_index_out_of_range_exits_78(
    tmp_path: Path, settings: Settings, redis_url: str, args: tuple[str, ...]
) -> None:
    """redis://host:port/99 on a server with 16 databases: exit 78 at once, naming the
    variable (worker and ingress too: not an endless reconnect loop or 503s forever)."""
    source = _write_csv(tmp_path / "rows.csv", [dict(VALID)])
    argv = [str(source) if a == "FILE" else a for a in args]
    url = redis_url.rsplit("/", 1)[0] + "/99"
    env = {"HTAP_SYNC_REDIS_URL": url, "HTAP_SYNC_API_AUTH": "off"}
    ran = htap_sync(settings, *argv, env=env, timeout_s=60)
    assert ran.returncode == 78, ran.stderr
    assert "HTAP_SYNC_REDIS_URL" in ran.stderr and "names a database the" in ran.stderr
    assert "Traceback" not in ran.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("status", "tk_" + "0" * 32, "--timeout-s", "0.5"),
        ("wait", "tk_" + "0" * 32, "--timeout-s", "0"),
        ("inspect",),
        ("failed",),
        ("worker",),
        ("bulk", "FILE"),
    ],
)
def test_a_redis_password_is_never_printed(
    tmp_path: Path, settings: Settings, args: tuple[str, ...]
) -> None:
    """Against an unreachable Redis whose URL carries a password, no output shows it."""
    source = _write_csv(tmp_path / "rows.csv", [dict(VALID)])
    argv = [str(source) if a == "FILE" else a for a in args]
    url = f"redis://user:{SECRET}@127.0.0.1:{free_port()}/0"
    ran = htap_sync(settings, *argv, env={"HTAP_SYNC_REDIS_URL": url}, timeout_s=60)
    assert ran.returncode == 69, (ran.returncode, ran.stderr[-2000:])
    assert SECRET not in ran.stdout + ran.stderr
    assert "user:***@127.0.0.1" in ran.stderr
