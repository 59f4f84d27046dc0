"""Redis settings at the edges: a database the server lacks, and a password never printed."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import redis

from htap_sync.common.models import ReplicationRequest
from htap_sync.common.settings import Settings
from htap_sync.common.tickets.store import ReadNotReplicated, TicketStore
from htap_sync.devstack import free_port
from tests.conftest import VALID, request_data
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


def test_a_read_the_replicas_do_not_hold_is_an_outage(redis_url: str) -> None:
    """With replicas to hold what a read shows (Sentinel), a master without them answers
    ReadNotReplicated (a ConnectionError: callers ride it out), never a status that a failover
    could take back; without (a lone Redis), the same read answers."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    lone = TicketStore(client, key_prefix=prefix, result_ttl_s=60)
    ticket, _, _ = lone.submit(ReplicationRequest.model_validate(request_data()))
    fenced = TicketStore(
        client, key_prefix=prefix, result_ttl_s=60, read_replicas=1, read_wait_s=0.05
    )
    with pytest.raises(ReadNotReplicated) as raised:
        fenced.get_many([ticket])
    assert isinstance(raised.value, redis.ConnectionError)
    assert "0 of 1 replicas" in str(raised.value)
    assert lone.get(ticket).ticket == ticket
