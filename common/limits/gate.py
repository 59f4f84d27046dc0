"""What a worker passes before each API call: the fleet's rate limit, then its circuit breaker.

Waiting here never costs an attempt. A short wait (a reserved token due within ``max_sleep_s``)
sleeps in the worker; a longer one (the bucket is blocked by a ``Retry-After``, the rate is far
below the demand, the breaker is open) raises :class:`MustWait`, and the ticket goes back to
the durable delayed set.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Literal, Protocol

from htap_sync.common.errors import Ambiguous, ApiError, Throttled, TransportError
from htap_sync.common.keys import Keys
from htap_sync.common.lanes import lane_of, tenant_weights
from htap_sync.common.limits import breaker as breakers
from htap_sync.common.limits import bucket as buckets
from htap_sync.common.limits.admission import Admission, Limits, ScriptedLimits
from htap_sync.common.limits.breaker import BreakerPolicy, BreakerState, RedisBreakerStore
from htap_sync.common.limits.bucket import BucketPolicy, BucketState, Grant, RedisBucketStore
from htap_sync.common.limits.bucket_lanes import LaneAsk
from htap_sync.common.settings import Settings

# The APIs a worker calls; each has its own bucket per project (the gateway limits each API).
# "configure": the configuration call (a check that creates the task); "delete": a task's DELETE;
# "pause", "resume", "modify": the operations on a task (worker/operations.py).
Api = Literal[
    "create", "list", "jobs", "configuration", "configure", "delete", "pause", "resume", "modify"
]


class BucketStore(Protocol):
    """Where token buckets live (memory or Redis)."""

    def acquire(
        self, key: str, policy: BucketPolicy, now: float | None = None, lane: LaneAsk | None = None
    ) -> Grant: ...

    def penalize(
        self, key: str, policy: BucketPolicy, now: float | None, retry_after_s: float | None
    ) -> None: ...

    def state(self, key: str) -> BucketState | None: ...


class BreakerStore(Protocol):
    """Where circuit breakers live (memory or Redis)."""

    def allow(self, key: str, policy: BreakerPolicy, now: float | None = None) -> float: ...

    def record(self, key: str, policy: BreakerPolicy, now: float | None, ok: bool) -> None: ...

    def state(self, key: str) -> BreakerState | None: ...


class CallGate(Protocol):
    """What the worker's logic needs of a gate."""

    def before_call(
        self, project_id: str, api: Api, lane: str | None = None, tenant: str | None = None
    ) -> None: ...

    def after_call(self, project_id: str, api: Api, error: ApiError | None) -> None: ...


class LimitedGate(CallGate, Protocol):
    """A gate whose checks of one call the ticket store can make inside its own steps
    (recognised by its ``limits`` method)."""

    def limits(
        self, project_id: str, api: Api, lane: str | None = None, tenant: str | None = None
    ) -> Limits: ...


class MustWait(Exception):
    """The call may not go out now; try again in ``wait_s`` seconds."""

    def __init__(self, wait_s: float, reason: Literal["rate", "breaker", "lease", "list"]) -> None:
        self.wait_s = wait_s
        self.reason = reason
        super().__init__(f"wait {wait_s:.2f} s ({reason})")


# A call reaches the API a little after its token: threads wake late from a reservation's
# sleep, a batch's calls leave one after another. So that the API never sees more than
# rate + burst in any one second of its own, the bucket keeps back of the burst what the rate
# gives in this long (a one-second window of arrivals spans grants over 1 s plus this).
SEND_JITTER_S = 0.2


def bucket_policy(settings: Settings) -> BucketPolicy:
    """The bucket's policy from the settings: the burst less :data:`SEND_JITTER_S` of the
    rate (at least 1 token)."""
    rate = settings.rate.limit_per_s
    kept = max(1, math.floor(settings.rate.burst - rate * SEND_JITTER_S))
    return BucketPolicy(rate_per_s=rate, burst=kept)


def breaker_policy(settings: Settings) -> BreakerPolicy:
    """The breaker's policy from the settings."""
    return BreakerPolicy(
        threshold=settings.breaker.threshold,
        cooldown_s=settings.breaker.cooldown_s,
        probes=settings.breaker.probes,
        probe_timeout_s=settings.lease_s,
    )


def _failed(exc: ApiError | None) -> bool:
    # The server failed (5xx, no answer, unreachable); a 4xx or a 429 is a working server.
    return isinstance(exc, Ambiguous | TransportError)


class Gate:
    """The rate limit and the breaker of one endpoint, per project and API.

    Args:
        buckets: where the token buckets live.
        breakers: where the breakers live.
        settings: the policies, the endpoint and the key prefix.
        sleep: how short waits are slept (tests pass a fake).
    """

    def __init__(
        self,
        buckets: BucketStore,
        breakers: BreakerStore,
        settings: Settings,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._buckets = buckets
        self._breakers = breakers
        self._bucket_policy = bucket_policy(settings)
        self._breaker_policy = breaker_policy(settings)
        self._keys = Keys(settings.key_prefix)
        self._endpoint = settings.cloud.require_endpoint
        self._sleep = sleep
        self.max_sleep_s = min(5.0, settings.delivery.visibility_timeout_s / 4)
        # One per project, API, lane and tenant.
        self._limits: dict[tuple[str, Api, str | None, str | None], Limits] = {}
        self._settings = settings
        self._weights = tenant_weights(settings)
        policy = self._bucket_policy
        # An ask served first reserves past what the others may have reserved (one horizon),
        # never further than a worker sleeps for a token (start.lua would waste it), nor a
        # starved bulk ask (this plus one horizon: bucket_lanes.py).
        self.lane_horizon_s = max(
            policy.horizon_s,
            min(
                self.max_sleep_s - policy.horizon_s,
                policy.horizon_s + max(1.0, 2.0 / policy.rate_per_s),
            ),
        )

    def bucket_key(self, project_id: str, api: Api) -> str:
        """Redis key of the bucket of one API of one project on this endpoint."""
        return self._keys.bucket(self._endpoint, project_id, api)

    def breaker_key(self) -> str:
        """Redis key of this endpoint's breaker (a failing endpoint fails every project)."""
        return self._keys.breaker(self._endpoint)

    def before_call(
        self, project_id: str, api: Api, lane: str | None = None, tenant: str | None = None
    ) -> None:
        """Return when the call may go out (after a short sleep, perhaps). A call made for a
        ``lane`` (and ``tenant``) asks the bucket in its place there, as a ticket's attempt
        does (:meth:`limits`): a bulk call refused a token is deferred, never slept.

        Raises:
            MustWait: a long wait (or a bulk call refused); defer the ticket or the round.
        """
        key = self.bucket_key(project_id, api)
        ask = self.lane_ask(project_id, lane, tenant) if lane is not None else None
        while True:
            grant = self._buckets.acquire(key, self._bucket_policy, lane=ask)
            if grant.granted:
                break
            if grant.wait_s > self.max_sleep_s or (ask is not None and ask.lane == "bulk"):
                raise MustWait(grant.wait_s, "rate")
            self._sleep(grant.wait_s)  # until a token is due: never a busy loop
        wait = self._breakers.allow(self.breaker_key(), self._breaker_policy)
        if wait > 0:
            raise MustWait(wait, "breaker")
        if grant.wait_s > 0:
            self._sleep(grant.wait_s)

    def limits(
        self, project_id: str, api: Api, lane: str | None = None, tenant: str | None = None
    ) -> Limits:
        """The checks of one call, for the ticket store's ``start``/``finish`` (one step each
        on Redis when the bucket and the breaker live there too); a ticket's ``lane`` and
        ``tenant`` (default: the project) decide its place on the bucket."""
        key = (project_id, api, lane, tenant)
        found = self._limits.get(key)
        if found is None:
            ask = self.lane_ask(project_id, lane, tenant)
            found = self._limits[key] = _GateLimits(self, project_id, api, ask)
        return found

    def lane_ask(self, project_id: str, lane: str | None, tenant: str | None) -> LaneAsk | None:
        """How a ticket of this lane and tenant asks the bucket (None: without lanes)."""
        found = lane_of(self._settings, lane)
        if found is None:
            return None
        who = tenant or project_id
        return LaneAsk(
            lane=found,
            tenant=who,
            weight=self._weights.get(who, 1.0),
            min_share=self._settings.rate.bulk_min_share,
            horizon_s=self.lane_horizon_s,
        )

    def after_call(self, project_id: str, api: Api, error: ApiError | None) -> None:
        """Feed a call's outcome to the breaker, and a 429 to the bucket."""
        self._breakers.record(self.breaker_key(), self._breaker_policy, None, not _failed(error))
        if isinstance(error, Throttled):
            self._buckets.penalize(
                self.bucket_key(project_id, api), self._bucket_policy, None, error.retry_after_s
            )

    def scripted(self, bucket_key: str, lane: LaneAsk | None) -> ScriptedLimits | None:
        """The bucket's and the breaker's checks as the arguments of ``bucket.lua`` and
        ``breaker.lua``, when both live in one Redis (a store on that client runs them inside
        its own scripts); else None."""
        found, told = self._buckets, self._breakers
        if not (
            isinstance(found, RedisBucketStore)
            and isinstance(told, RedisBreakerStore)
            and found.client is told.client
        ):
            return None
        encoder = found.client.get_encoder()

        def encoded(args: list[str | int | float]) -> list[bytes]:
            # Once, as redis-py would encode them again for every call of every ticket.
            return [encoder.encode(a) for a in args]  # type: ignore[no-untyped-call]

        bucket_policy, breaker_policy = self._bucket_policy, self._breaker_policy
        return ScriptedLimits(
            where=found.client,
            bucket_key=bucket_key,
            acquire_args=encoded(buckets.script_args(bucket_policy, None, "acquire", lane=lane)),
            breaker_key=self.breaker_key(),
            allow_args=encoded(breakers.script_args(breaker_policy, None, "allow")),
            ok_args=encoded(breakers.script_args(breaker_policy, None, "ok")),
        )

    def admit(self, bucket_key: str, lane: LaneAsk | None, max_sleep_s: float) -> Admission:
        """A token of ``bucket_key`` (in ``lane``), then the breaker; never sleeps. A token
        further away than ``max_sleep_s`` is a wait."""
        grant = self._buckets.acquire(bucket_key, self._bucket_policy, lane=lane)
        if not grant.granted or grant.wait_s > max_sleep_s:
            return Admission("rate", grant.wait_s)
        wait = self._breakers.allow(self.breaker_key(), self._breaker_policy)
        if wait > 0:
            return Admission("breaker", wait)
        return Admission(sleep_s=grant.wait_s)

    def succeeded(self) -> None:
        """The breaker hears of a call that succeeded."""
        self._breakers.record(self.breaker_key(), self._breaker_policy, None, True)

    def sleep(self, seconds: float) -> None:
        """Sleep as the gate does (its injected sleep)."""
        self._sleep(seconds)

    def bucket(self, project_id: str, api: Api = "create") -> BucketState | None:
        """A bucket's state, for operators."""
        return self._buckets.state(self.bucket_key(project_id, api))

    def breaker(self) -> BreakerState | None:
        """The breaker's state, for operators."""
        return self._breakers.state(self.breaker_key())


class _GateLimits(Limits):
    """:meth:`Gate.before_call` and a success's :meth:`Gate.after_call`, without sleeping
    (through the gate's own methods: :meth:`Gate.scripted`, :meth:`Gate.admit`)."""

    def __init__(self, gate: Gate, project_id: str, api: Api, lane: LaneAsk | None) -> None:
        self._gate = gate
        self._bucket_key = gate.bucket_key(project_id, api)
        self._lane = lane
        self.max_sleep_s = gate.max_sleep_s
        self.scripted = gate.scripted(self._bucket_key, lane)

    def admit(self) -> Admission:
        """A token, then the breaker; a token further away than ``max_sleep_s`` is a wait."""
        return self._gate.admit(self._bucket_key, self._lane, self.max_sleep_s)

    def succeeded(self) -> None:
        """The breaker hears of a call that succeeded."""
        self._gate.succeeded()

    def sleep(self, seconds: float) -> None:
        """Sleep as the gate does."""
        self._gate.sleep(seconds)


class _NoLimits(Limits):
    """Nothing to check: every call goes at once."""

    free = True

    def admit(self) -> Admission:
        """Always go."""
        return Admission()

    def succeeded(self) -> None:
        """Remember nothing."""

    def sleep(self, seconds: float) -> None:
        """Never asked to: nothing is reserved."""


class OpenGate:
    """A gate that lets every call through (tests of the logic around it)."""

    def before_call(
        self, project_id: str, api: Api, lane: str | None = None, tenant: str | None = None
    ) -> None:
        """Always go."""

    def limits(
        self, project_id: str, api: Api, lane: str | None = None, tenant: str | None = None
    ) -> Limits:
        """Nothing to check."""
        return _NO_LIMITS

    def after_call(self, project_id: str, api: Api, error: ApiError | None) -> None:
        """Remember nothing."""


_NO_LIMITS = _NoLimits()
OPEN_GATE = OpenGate()
