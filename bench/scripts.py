"""Redis work per created ticket: two scripts (start, finish) against the step-by-step path.

Both deliver tickets through ``process_ticket`` on a real Redis, with the real gate (bucket
and breaker on that Redis) and following on, against an API answered in this process (an
``httpx.MockTransport`` that creates every task). Ours: ``start.lua`` and ``finish.lua`` on a
hiredis-parsed connection. The reference takes the steps one by one, as workers did before
the two scripts (claim, bucket, breaker, in-doubt mark, breaker, enrolment, success: six
scripts and a transaction), on redis-py's pure-Python reply parser. Both use today's
``bucket.lua``/``breaker.lua`` (which write only what changed), so the reference is a little
cheaper than the old path was. Runs alternate, three each.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from pathlib import Path
from statistics import median
from typing import Any

import httpx
import redis
from redis._parsers import _RESP2Parser

from bench.report import Row, Table, print_alone, progress
from htap_sync.common.connections import make_store
from htap_sync.common.errors import ApiError
from htap_sync.common.keys import Keys
from htap_sync.common.limits.breaker import RedisBreakerStore
from htap_sync.common.limits.bucket import RedisBucketStore
from htap_sync.common.limits.gate import Api, Gate
from htap_sync.common.models import parse_request
from htap_sync.common.settings import load_settings
from htap_sync.worker.api.client import TaurusClient
from htap_sync.worker.delivery.ticket import process_ticket
from htap_sync.worker.following.store import FollowStore, enroller

PROJECT = "0123456789abcdef0123456789abcdef"
BASE_URL = "https://taurus.invalid"  # MockTransport answers; nothing is resolved


class CountingConnection(redis.Connection):
    """A connection that counts its requests (a pipeline is one): round trips."""

    sent = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.sent += 1
        super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]


class StepByStep:
    """The same gate, offering only the calls a store cannot run in its own scripts."""

    def __init__(self, gate: Gate) -> None:
        self._gate = gate

    def before_call(
        self, project_id: str, api: Api, lane: str | None = None, tenant: str | None = None
    ) -> None:
        self._gate.before_call(project_id, api, lane, tenant)

    def after_call(self, project_id: str, api: Api, error: ApiError | None) -> None:
        self._gate.after_call(project_id, api, error)


def _created(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"job_id": uuid.uuid4().hex}, headers={"X-Request-Id": "r"})


def _payload(name: str) -> dict[str, str]:
    return {
        "project_id": PROJECT,
        "instance_id": f"{1:032d}in17",
        "source_instance_id": "1a2b3c4d5e6f708192a3b4c5d6e7f809in07",
        "source_database": "src_db",
        "target_database": "tgt_db",
        "task_name": name,
    }


def _redis_cpu_s(client: redis.Redis) -> float:
    info: dict[str, Any] = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def one_run(redis_url: str, tickets: int, *, two_scripts: bool) -> tuple[float, float, float]:
    """(client CPU s, Redis CPU s, round trips) per ticket for ``tickets`` created tickets."""
    settings = load_settings(
        {
            "redis_url": redis_url,
            "endpoint": BASE_URL,
            "key_prefix": f"bench-{uuid.uuid4().hex[:8]}",
            "rate_limit_per_s": 100_000.0,  # the gate never holds a call back here
            "rate_burst": 100_000,
        },
        env_file=None,
    )
    options: dict[str, Any] = {} if two_scripts else {"parser_class": _RESP2Parser}
    client = redis.Redis.from_url(
        redis_url, decode_responses=True, connection_class=CountingConnection, **options
    )
    store = make_store(settings, client)
    gate = Gate(RedisBucketStore(client), RedisBreakerStore(client), settings)
    follow = FollowStore(client, Keys(settings.key_prefix))
    enroll = enroller(follow, timeout_s=600, first_s=5)
    http = httpx.Client(base_url=BASE_URL, transport=httpx.MockTransport(_created))
    api = TaurusClient(http)
    messages = []
    for n in range(tickets):
        payload = _payload(f"bench_{n:05d}")
        ticket, run, _ = store.submit(parse_request(payload))
        messages.append((ticket, run, payload))
    monitor = redis.Redis.from_url(redis_url, decode_responses=True)
    trips_before = CountingConnection.sent
    redis_before, cpu_before = _redis_cpu_s(monitor), time.process_time()
    for ticket, run, payload in messages:
        process_ticket(
            ticket,
            run,
            payload,
            client=api,
            store=store,
            settings=settings,
            rng=random.Random(1),
            gate=gate if two_scripts else StepByStep(gate),
            enroll=enroll if two_scripts else lambda t, r, j: enroll(t, r, j),
        )
    cpu = time.process_time() - cpu_before
    redis_cpu = _redis_cpu_s(monitor) - redis_before
    trips = CountingConnection.sent - trips_before
    http.close()
    client.close()
    monitor.close()
    return cpu / tickets, redis_cpu / tickets, trips / tickets


def run(redis_url: str, logs: Path, *, tickets: int = 2000, repeats: int = 3) -> list[Table]:
    """Client CPU, Redis CPU and Redis round trips per created ticket, against step by step."""
    ours: list[tuple[float, float, float]] = []
    theirs: list[tuple[float, float, float]] = []
    one_run(redis_url, 200, two_scripts=True)  # warm up: imports, scripts loaded
    one_run(redis_url, 200, two_scripts=False)
    for n in range(repeats):
        progress(f"scripts: run {n + 1} of {repeats}, {tickets} tickets each way")
        ours.append(one_run(redis_url, tickets, two_scripts=True))
        theirs.append(one_run(redis_url, tickets, two_scripts=False))
    reference = "step by step, pure-Python reply parser"
    rows = [
        Row(
            measure,
            median(r[i] for r in ours) * scale,
            unit,
            reference,
            median(r[i] for r in theirs) * scale,
            note=f"median of {repeats} runs",
        )
        for i, (measure, unit, scale) in enumerate(
            [
                ("worker CPU per created ticket", "ms", 1000.0),
                ("Redis CPU per created ticket", "ms", 1000.0),
                ("Redis round trips per created ticket", "round trips", 1.0),
            ]
        )
    ]
    setup = (
        f"{tickets} tickets created one after another by process_ticket in this process (API"
        " answered in-process, gate and following on a real Redis on loopback); ours: two"
        " scripts with hiredis. Lower ratio is better."
    )
    return [Table("Redis work per created ticket", setup, rows)]


def main(argv: list[str] | None = None) -> int:
    """Run this benchmark alone and print its table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tickets", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    return print_alone(
        "scripts", lambda url, logs: run(url, logs, tickets=args.tickets, repeats=args.repeats)
    )


if __name__ == "__main__":
    sys.exit(main())
