"""What the simulator's loopback tests share: ids and keys, SDK clients and requests,
raw socket exchanges, a polling helper and a stepped clock."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Callable

from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkgaussdb.v3 import (
    CreateStarRocksDataReplication,
    CreateStarRocksDataReplicationRequest,
    GaussDBClient,
)

from htap_sync.simulator import SimulatorServer
from htap_sync.simulator.server import LOOPBACK

AK = "QTWAOYTTINDUT2QVKYUC"
SK = "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc"
PROJECT = "0123456789abcdef0123456789abcdef"
INSTANCE = "0f1e2d3c4b5a69788796a5b4c3d2e1f0in17"
MISSING_INSTANCE = "ffffffffffffffffffffffffffffffffin17"
SOURCE = "1a2b3c4d5e6f708192a3b4c5d6e7f809in07"
HEX32 = re.compile(r"[0-9a-f]{32}")
CREATE_PATH = f"/v3/{PROJECT}/instances/{INSTANCE}/starrocks/databases/replication"


def sdk_client(server: SimulatorServer, sk: str = SK) -> GaussDBClient:
    """An SDK client pointed at the simulator (plain http:// works as is)."""
    return (
        GaussDBClient.new_builder()
        .with_credentials(BasicCredentials(AK, sk, PROJECT))
        .with_endpoints([server.url])
        .build()
    )


def create_request(
    instance_id: str = INSTANCE, **fields: str
) -> CreateStarRocksDataReplicationRequest:
    """An SDK create request with valid fields, some replaced."""
    values = {
        "source_instance_id": SOURCE,
        "source_database": "src_db",
        "target_database": "tgt_db",
        "task_name": "task_orders_001",
        **fields,
    }
    return CreateStarRocksDataReplicationRequest(
        instance_id=instance_id,
        x_language="en-us",
        body=CreateStarRocksDataReplication(**values),
    )


def create_body(task_name: str) -> dict[str, str]:
    """A valid create body for ``task_name``."""
    return {
        "source_instance_id": SOURCE,
        "source_database": "src_db",
        "target_database": "tgt_db",
        "task_name": task_name,
    }


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 5.0) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def raw_exchange(port: int, task_name: str) -> bytes:
    """POST a create over a bare socket; return every byte received until the server closes."""
    payload = json.dumps(create_body(task_name)).encode()
    head = (
        f"POST {CREATE_PATH} HTTP/1.1\r\nHost: {LOOPBACK}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    received = b""
    with socket.create_connection((LOOPBACK, port), timeout=5) as sock:
        sock.sendall(head.encode() + payload)
        while chunk := sock.recv(4096):
            received += chunk
    return received


class SteppedClock:
    """Monotonic seconds that move only when the test steps them."""

    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now
