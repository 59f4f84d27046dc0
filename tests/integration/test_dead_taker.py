"""A process takes messages off the queue (as a worker's consumer does, into kombu's unacked
set) and is SIGKILLed before it starts them: their tickets are still ``queued``, no claim
names the dead process, and the broker would give the messages back only after its
visibility timeout (300 s here). The fleet's movers send those tickets again once the
messages are older than the heartbeat's lifetime (issue 20, item 4: a killed worker's tickets
are delivered again within 45 s of the kill, whatever it held).

The taker is a real process using kombu's own ``basic_get`` on the worker's Celery app, so
the unacked entries are exactly those a worker killed between taking and starting leaves.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest

from htap_sync.common.settings import Settings
from htap_sync.common.tickets.claim_types import ALIVE_TTL_S
from htap_sync.devstack import Service, wait_until
from htap_sync.producer.api import Producer
from tests.conftest import request_data
from tests.integration.conftest import WorkerFactory
from tests.integration.harness import child_env, wait_for

TAKEN = 3
# The movers look twice a second; a new message is then taken and answered within a few
# seconds: what the bound allows past the heartbeat's lifetime (far below the 300 s timeout).
SLACK_S = 20.0

TAKER = """
import sys, time
from htap_sync.common.celery_app import make_celery
from htap_sync.common.settings import load_settings

settings = load_settings(env_file=None)
want = int(sys.argv[1])
with make_celery(settings).connection_for_read() as connection:
    channel = connection.default_channel
    taken = 0
    while taken < want:
        message = channel.basic_get(settings.queue)  # into kombu's unacked set, like a worker
        if message is None:
            time.sleep(0.05)
            continue
        taken += 1
    print("taken", taken, flush=True)
    time.sleep(3600)
"""


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """The README's visibility timeout: the broker alone would give them back after 300 s."""
    return {"visibility_timeout_s": 300}


@pytest.mark.timeout(180)
def test_tickets_of_messages_taken_by_a_killed_process_are_delivered_again(
    settings: Settings, producer: Producer, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    tickets = [
        producer.enqueue(request_data(task_name=f"taken_{i}")).ticket for i in range(2 * TAKEN)
    ]
    taker = Service(
        "taker",
        [sys.executable, "-c", TAKER, str(TAKEN)],
        env=child_env(settings),
        log_dir=tmp_path,
    )
    try:
        wait_until(lambda: "taken" in taker.log_tail(), timeout_s=30, what="messages taken")
        taker.kill()
        killed_at = time.monotonic()
        workers = [start_worker(concurrency=2) for _ in range(3)]
        statuses = wait_for(
            producer, tickets, timeout_s=ALIVE_TTL_S + SLACK_S + 60, workers=workers
        )
        took = time.monotonic() - killed_at
    finally:
        taker.stop()
    assert all(s.state.value == "succeeded" for s in statuses.values()), statuses
    assert took <= ALIVE_TTL_S + SLACK_S, took
