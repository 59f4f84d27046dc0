"""What the simulator checks and which faults it injects: one frozen, validated value."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from htap_sync.simulator.ratelimit import RateLimit

# Every fault probability the config carries, in the fixed order one seeded draw stacks them
# (append new ones at the end so existing seeds keep replaying the same faults). Each name here
# also needs an entry in faults.FAULT_OF_RATE; range checks and "rates add up to at most 1"
# then cover it, because one draw per valid create call picks at most one fault.
FAULT_RATE_FIELDS: tuple[str, ...] = (
    "fail_rate",
    "created_then_500_rate",
    "drop_after_create_rate",
    "hang_rate",
    "hang_after_create_rate",
    "throttle_rate",
    "in_progress_rate",
)

EXISTING_NAME_MODES = ("reject-409", "reject-400", "accept")

# 0.1 + 0.2 + 0.7 is 1.0000000000000002 in floats: such a config is meant to add up to 1.
_SUM_TOLERANCE = 1e-9


@dataclass(frozen=True)
class SimulatorConfig:
    """Settings of one simulated TaurusDB HTAP endpoint.

    Every ``*_rate`` is the fraction (0..1) of valid create calls (authenticated, well-formed,
    known instances) that get that fault; together they add up to at most 1.

    Attributes:
        token: If set, a request may authenticate with ``X-Auth-Token`` equal to it (a static
            token that never expires, accepted alongside any token the IAM login issued).
        ak: Access key; with ``sk``, a request may authenticate with ``SDK-HMAC-SHA256``.
        sk: Secret key matching ``ak``.
        unknown_instances: StarRocks instance ids answered 400 ``DBS.200022`` (not found).
        latency_ms: Delay added to every create and list call, in milliseconds.
        fail_rate: Answer 500 ``DBS.108000`` before anything is created.
        created_then_500_rate: Create the task, then answer 500 ``DBS.108000``.
        drop_after_create_rate: Create the task, then close the connection without any answer.
        hang_rate: Create nothing, hold the request ``hang_ms``, then answer 500.
        hang_after_create_rate: Create the task, hold the request ``hang_ms``, then answer
            what the create call got (200 with the job id, or 409 for a duplicate name).
        hang_ms: How long a hang holds the request, in milliseconds.
        throttle_rate: Answer 429 ``APIGW.0308`` (with ``Retry-After``); create nothing.
        retry_after_s: ``Retry-After`` seconds sent with a 429; ``None`` omits the header.
        in_progress_rate: Answer 409 ``DBS.200047`` (another operation in progress); create
            nothing.
        seed: Seed of the fault RNG; ``None`` draws a fresh one (not reproducible).
        rate_limit_per_s: The gateway's own limit on create calls per second, per project
            (a token bucket; see ``simulator.ratelimit``); ``None`` means no limit. Beyond it
            a valid create call is answered 429 ``APIGW.0308`` with ``Retry-After``.
        rate_limit_burst: The bucket size: calls a project may make at once; ``None`` means
            ``max(1, ceil(rate_limit_per_s))``. Needs ``rate_limit_per_s``.
        iam_domain: Account (domain) name of the one IAM user that may log in with
            ``POST /v3/auth/tokens``; with ``iam_user`` and ``iam_password``, set all three or
            none. The tokens that login issues are then valid ``X-Auth-Token`` values.
        iam_user: IAM user name.
        iam_password: That user's password.
        token_lifetime_s: Seconds an issued token stays valid (IAM's own: 24 hours).
        stage_wait_s: Seconds a new task stays in stage Wait (see ``simulator.lifecycle``).
        stage_full_s: Seconds it then stays in Full before Incremental.
        sync_fail_rate: Share (0..1) of created tasks that fail to sync, drawn from ``seed``.
        job_appear_delay_s: Seconds a new job stays unknown to the jobs API.
        existing_name: What a create with a task name that exists answers (undocumented on
            the real service): ``reject-409``, ``reject-400``, or ``accept`` (200 with a new
            job id, creating nothing). A create call that names a configured task waiting to
            start, with its databases, starts it instead (200 with a job id).
        alter_error_rate: Share (0..1) of configured tasks (made by a configuration check)
            whose configuration shows a ``last_error_of_alter_table``, drawn from ``seed``.
        op_job_s: Seconds a pause, resume, delete or modify job stays Running; meanwhile
            another operation on that task is answered 409 ``DBS.200019``.

    Raises:
        ValueError: A field is out of range; the message names the field.
    """

    # Secrets stay out of repr() so a logged config never leaks them.
    token: str | None = field(default=None, repr=False)
    ak: str | None = None
    sk: str | None = field(default=None, repr=False)
    unknown_instances: frozenset[str] = frozenset()
    latency_ms: int = 0
    fail_rate: float = 0.0
    created_then_500_rate: float = 0.0
    drop_after_create_rate: float = 0.0
    hang_rate: float = 0.0
    hang_after_create_rate: float = 0.0
    hang_ms: int = 30_000
    throttle_rate: float = 0.0
    retry_after_s: int | None = 2
    in_progress_rate: float = 0.0
    seed: int | None = None
    rate_limit_per_s: float | None = None
    rate_limit_burst: int | None = None
    iam_domain: str | None = None
    iam_user: str | None = None
    iam_password: str | None = field(default=None, repr=False)
    token_lifetime_s: float = 86_400.0
    stage_wait_s: float = 0.0
    stage_full_s: float = 0.0
    sync_fail_rate: float = 0.0
    job_appear_delay_s: float = 0.0
    existing_name: str = "reject-409"
    alter_error_rate: float = 0.0
    op_job_s: float = 0.0

    def __post_init__(self) -> None:
        for name in ("stage_wait_s", "stage_full_s", "job_appear_delay_s", "op_job_s"):
            value = getattr(self, name)
            if not _is_number(value) or not 0 <= value < math.inf:
                raise ValueError(f"{name}: must be a finite number >= 0")
        for name in ("sync_fail_rate", "alter_error_rate"):
            rate = getattr(self, name)
            if not _is_number(rate) or not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name}: must be a number between 0 and 1")
        if self.existing_name not in EXISTING_NAME_MODES:
            raise ValueError(f"existing_name: must be one of {', '.join(EXISTING_NAME_MODES)}")
        iam = ("iam_domain", "iam_user", "iam_password")
        for name in ("token", "ak", "sk", *iam):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"{name}: must be a non-empty string or None")
        if (self.ak is None) != (self.sk is None):
            raise ValueError("ak/sk: set both or neither")
        if len({getattr(self, name) is None for name in iam}) > 1:
            raise ValueError("iam_domain/iam_user/iam_password: set all three or none")
        lifetime = self.token_lifetime_s
        if not _is_number(lifetime) or not 0 < lifetime < math.inf:
            raise ValueError("token_lifetime_s: must be a finite number > 0")
        if isinstance(self.unknown_instances, str):
            # frozenset("abc") would silently become three one-letter ids.
            raise ValueError("unknown_instances: must be a set of ids, not one string")
        # Accept any iterable of ids (a list from a CLI) but store the frozen, hashable form.
        object.__setattr__(self, "unknown_instances", frozenset(self.unknown_instances))
        if not all(isinstance(i, str) for i in self.unknown_instances):
            raise ValueError("unknown_instances: every id must be a string")
        for name in ("latency_ms", "hang_ms"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 0:
                raise ValueError(f"{name}: must be an integer >= 0")
        if self.retry_after_s is not None and (
            not _is_int(self.retry_after_s) or self.retry_after_s < 0
        ):
            raise ValueError("retry_after_s: must be an integer >= 0 or None")
        if self.seed is not None and not _is_int(self.seed):
            raise ValueError("seed: must be an integer or None")
        self.rate_limit()  # raises for an out-of-range limit
        for name in FAULT_RATE_FIELDS:
            rate = getattr(self, name)
            if not _is_number(rate) or not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name}: must be a number between 0 and 1")
        rates = self.fault_rates()
        total = sum(rates.values())
        if total > 1.0 + _SUM_TOLERANCE:
            used = "+".join(name for name, rate in rates.items() if rate > 0)
            raise ValueError(f"{used}: fault rates must add up to <= 1 (they add up to {total:g})")

    @property
    def iam_enabled(self) -> bool:
        """True if an IAM account is configured (the login route is served)."""
        return self.iam_user is not None

    def rate_limit(self) -> RateLimit | None:
        """Return the rate limit to start with (the default burst filled in), or None.

        Raises:
            ValueError: ``rate_limit_per_s`` or ``rate_limit_burst`` is out of range.
        """
        return RateLimit.of(
            self.rate_limit_per_s,
            self.rate_limit_burst,
            names=("rate_limit_per_s", "rate_limit_burst"),
        )

    def fault_rates(self) -> dict[str, float]:
        """Return every fault rate by field name, in the fixed order faults are drawn."""
        return {name: float(getattr(self, name)) for name in FAULT_RATE_FIELDS}


def _is_int(value: object) -> bool:
    # bool is an int subclass; True as a latency or a seed is a mistake, not a value.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
