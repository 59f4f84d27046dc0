"""One worker's collaborators for process_ticket on a real Redis: the ticket store, a
scripted API, a seeded RNG; and the checks the process tests share."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from htap_sync.common.limits.gate import OPEN_GATE, CallGate
from htap_sync.common.models import TicketStatus, parse_request
from htap_sync.common.settings import Settings
from htap_sync.common.tickets.claims_redis import RedisClaimStore
from htap_sync.common.tickets.store import Submitted
from htap_sync.worker.api.aio import LoopTransport
from htap_sync.worker.api.client import TaurusClient
from htap_sync.worker.delivery.start import Delivery, no_enroll
from htap_sync.worker.delivery.ticket import Outcome, process_ticket
from htap_sync.worker.delivery.together import process_batch
from tests.conftest import request_data
from tests.scripted_api import FakeClock, ScriptedApi, refused

SEED = 1234
BASE_URL = "https://taurus.invalid"  # MockTransport answers; nothing is ever resolved
RESULT_TTL_S = 4321  # distinctive, so a TTL check cannot pass by accident
NAME_EXISTS = "DBS.280005"  # the simulator's 409 for a task name that already exists


@dataclass(frozen=True)
class Message:
    """What the broker would carry: ticket, run and the request as JSON-ready data."""

    ticket: str
    run: str
    payload: Any


@dataclass
class Rig:
    """A real ticket store, a client on the scripted API, a seeded RNG: one test's worker."""

    settings: Settings
    redis: redis.Redis
    store: RedisClaimStore
    api: ScriptedApi
    client: TaurusClient
    batched: LoopTransport | None = None  # the batch path's bridge: deliver as a batch

    def __post_init__(self) -> None:
        self.rng = random.Random(SEED)
        self.clock: Callable[[], float] = time.time

    def use_clock(self, clock: FakeClock) -> None:
        """Swap in a store on the same keys whose time is ``clock`` (before any submit)."""
        self.clock = clock
        self.store = RedisClaimStore(
            self.redis,
            key_prefix=self.settings.key_prefix,
            result_ttl_s=self.settings.delivery.result_ttl_s,
            clock=clock,
        )

    def submit(self, **changes: str) -> Message:
        """Submit a valid request (with some fields changed) as a new ticket."""
        payload = request_data(**changes)
        ticket, run, what = self.store.submit(parse_request(payload))
        assert what is Submitted.QUEUED
        return Message(ticket, run, payload)

    def deliver(
        self,
        message: Message,
        client: TaurusClient | None = None,
        replicas: int = 0,
        gate: CallGate = OPEN_GATE,
    ) -> Outcome:
        """One delivery of ``message`` to the worker logic, through ``gate``: alone, or (a
        batched rig) as the only ticket of a batch."""
        client = client or self.client
        if self.batched is None:
            return process_ticket(
                message.ticket,
                message.run,
                message.payload,
                client=client,
                store=self.store,
                settings=self.settings,
                rng=self.rng,
                gate=gate,
                clock=self.clock,
                replicas=lambda: replicas,
            )
        d = Delivery(
            client,
            self.store,
            self.settings,
            self.rng,
            gate,
            self.clock,
            no_enroll,
            lambda: replicas,
        )
        [end] = process_batch([(message.ticket, message.run, message.payload)], d)
        if isinstance(end, Exception):
            raise end
        return end

    def status(self, message: Message) -> TicketStatus:
        """The ticket's status as a caller polls it."""
        return self.store.get(message.ticket)

    def in_doubt(self, message: Message) -> bool:
        """The ticket's raw ``in_doubt`` flag."""
        return self.redis.hget(self.store.key(message.ticket), "in_doubt") == "1"

    def ttl_s(self, message: Message) -> int:
        """The ticket key's TTL in seconds (-1: never expires)."""
        return int(self.redis.ttl(self.store.key(message.ticket)))


def first_jitter_s(settings: Settings) -> float:
    """The delay after a first failed attempt without Retry-After: full jitter from SEED."""
    return random.Random(SEED).uniform(0.0, settings.delivery.backoff_base_s)


def assert_result_ttl(rig: Rig, message: Message) -> None:
    """A finished ticket expires after result_ttl_s."""
    assert RESULT_TTL_S - 2 <= rig.ttl_s(message) <= RESULT_TTL_S


def fail_once_with_503(rig: Rig) -> Message:
    """Submit a ticket whose first create call is answered 503."""
    msg = rig.submit()
    rig.api.answer_creates(
        refused(503, "DBS.108000", "Internal server error.", request_id="req-503")
    )
    assert rig.deliver(msg).kind == "retry"
    return msg
