"""The sections of :class:`htap_sync.common.settings.Settings`, one model per role.

Each field is documented under its environment variable (see ``settings_names.FLAT_NAMES``):
``settings.redis.url`` is ``HTAP_SYNC_REDIS_URL``, ``settings.following.enabled`` is
``HTAP_SYNC_FOLLOW``. Checks that involve one section only live here; a message starts with the
field it is about (``"sentinels: ..."``) so that the error can name the variable.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    RedisDsn,
    SecretStr,
    StringConstraints,
    field_validator,
    model_validator,
)

from htap_sync.common.errors import SettingsError

ENV_PREFIX = "HTAP_SYNC_"

ProjectId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{32}$")]


def is_loopback(host: str | None) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Section(BaseModel):
    """A group of settings: frozen, and inf/nan refused in every float, like the whole."""

    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)


class RedisSettings(Section):
    """Where Redis is, and how much of it a worker relies on."""

    url: RedisDsn = Field(
        default=RedisDsn("redis://127.0.0.1:6379/0"),
        description="Redis for the broker queue and the ticket store (results).",
    )
    sentinels: str | None = Field(
        default=None,
        description="Redis Sentinel addresses, host:port,host:port,... With"
        " HTAP_SYNC_REDIS_SENTINEL_MASTER, every Redis client and the broker find the master"
        " through them and follow a failover; HTAP_SYNC_REDIS_URL then gives only the"
        " database, user and password.",
    )
    sentinel_master: str | None = Field(
        default=None, description="The Sentinel group's master name (e.g. mymaster)."
    )
    sentinel_password: SecretStr | None = Field(
        default=None, description="Password of the sentinels themselves, if they require one."
    )
    wait_replicas: int = Field(
        default=1,
        ge=0,
        le=16,
        description="Before each create call, wait until this many replicas (at most as many as"
        " are connected) hold the ticket's in-doubt mark, so that a failover cannot lose it."
        " 0 turns the wait off.",
    )
    wait_timeout_s: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="How long a worker waits for those replicas before it puts the call off.",
    )
    allow_evicting: bool = Field(
        default=False,
        description="Let workers start on a Redis whose maxmemory-policy may evict keys"
        " (queued requests could be lost).",
    )

    @field_validator("sentinels", "sentinel_master", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # compose passes ${VAR:-} as an empty string: the same as not set.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("url")
    @classmethod
    def _database_number(cls, url: RedisDsn) -> RedisDsn:
        # redis-py reads a path it cannot parse as database 0: refuse it instead.
        path = (url.path or "/").removeprefix("/")
        if path and not (path.isascii() and path.isdigit()):
            raise ValueError("the path must be a database number (redis://host:6379/0) or nothing")
        return url

    @model_validator(mode="after")
    def _check(self) -> RedisSettings:
        if (self.sentinels is None) != (self.sentinel_master is None):
            raise ValueError(
                f"sentinels: {ENV_PREFIX}REDIS_SENTINELS and {ENV_PREFIX}REDIS_SENTINEL_MASTER"
                " go together"
            )
        self.sentinel_hosts()  # a malformed address list fails at start, naming the variable
        return self

    @property
    def display(self) -> str:
        """Where Redis is, for messages and logs: the URL without its password, or the
        sentinels and master name."""
        if self.sentinels:
            return f"sentinels {self.sentinels} (master {self.sentinel_master})"
        url = self.url
        auth = f"{url.username or ''}:***@" if url.password else ""
        port = f":{url.port}" if url.port else ""
        return f"{url.scheme}://{auth}{url.host}{port}{url.path or ''}"

    def sentinel_hosts(self) -> list[tuple[str, int]]:
        """The sentinels as (host, port) pairs; empty without Sentinel.

        Raises:
            ValueError: an address is not ``host:port`` with a port in 1-65535.
        """
        hosts: list[tuple[str, int]] = []
        for part in (self.sentinels or "").split(","):
            text = part.strip()
            if not text:
                continue
            host, sep, port = text.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(
                    "sentinels: each address must be host:port (port 1-65535), comma-separated"
                )
            hosts.append((host.strip("[]"), int(port)))
        if self.sentinels is not None and not hosts:
            raise ValueError("sentinels: name at least one sentinel as host:port")
        return hosts


class CloudSettings(Section):
    """The TaurusDB API the workers call."""

    endpoint: AnyHttpUrl | None = Field(
        default=None,
        description="Base URL of the TaurusDB API, e.g. https://gaussdb.cn-north-4.myhuaweicloud.com."
        " Required by workers.",
    )
    allow_insecure_http: bool = Field(
        default=False, description="Allow a plain http:// endpoint that is not on loopback."
    )
    project_id: ProjectId | None = Field(
        default=None, description="Project id for requests that do not name one."
    )
    language: Literal["en-us", "zh-cn"] = Field(
        default="en-us", description="X-Language header: language of the API's error messages."
    )
    request_timeout_s: float = Field(
        default=30.0, gt=0, le=600, description="Timeout of one HTTP call to the API."
    )

    @property
    def require_endpoint(self) -> str:
        """The endpoint as a string without a trailing slash; SettingsError when unset."""
        if self.endpoint is None:
            raise SettingsError(f"{ENV_PREFIX}ENDPOINT: required to run a worker")
        return str(self.endpoint).rstrip("/")


class AuthSettings(Section):
    """How workers authenticate to the API: exactly one of a token, AK/SK or IAM."""

    token: SecretStr | None = Field(
        default=None, description="Static IAM token sent as X-Auth-Token."
    )
    ak: SecretStr | None = Field(
        default=None,
        description="Access key for SDK-HMAC-SHA256 signing (also read from CLOUD_SDK_AK).",
    )
    sk: SecretStr | None = Field(
        default=None,
        description="Secret key for SDK-HMAC-SHA256 signing (also read from CLOUD_SDK_SK).",
    )
    iam_endpoint: AnyHttpUrl | None = Field(
        default=None,
        description="IAM endpoint for password tokens, e.g. https://iam.cn-north-4.myhuaweicloud.com.",
    )
    iam_user: str | None = Field(default=None, description="IAM user name for password tokens.")
    iam_password: SecretStr | None = Field(default=None, description="That user's password.")
    iam_domain: str | None = Field(
        default=None, description="The account (domain) name the IAM user belongs to."
    )

    @model_validator(mode="after")
    def _check(self) -> AuthSettings:
        if (self.ak is None) != (self.sk is None):
            raise ValueError(
                f"ak: {ENV_PREFIX}AK and {ENV_PREFIX}SK (or CLOUD_SDK_AK and CLOUD_SDK_SK) go"
                " together"
            )
        iam = {n: getattr(self, f"iam_{n}") for n in ("endpoint", "user", "password", "domain")}
        if any(v is not None for v in iam.values()) and any(v is None for v in iam.values()):
            missing = ", ".join(f"{ENV_PREFIX}IAM_{n.upper()}" for n, v in iam.items() if v is None)
            raise ValueError(f"iam_endpoint: IAM tokens also need {missing}")
        if len(self.modes) > 1:
            raise ValueError(
                "token: configure exactly one way to authenticate, not " + " and ".join(self.modes)
            )
        return self

    @property
    def modes(self) -> list[str]:
        """The authentication modes configured, named by their variables."""
        modes = []
        if self.token is not None:
            modes.append(f"{ENV_PREFIX}AUTH_TOKEN")
        if self.ak is not None:
            modes.append(f"{ENV_PREFIX}AK/{ENV_PREFIX}SK")
        if self.iam_endpoint is not None:
            modes.append(f"{ENV_PREFIX}IAM_*")
        return modes

    def require_mode(self) -> str:
        """The one configured mode: ``token``, ``aksk`` or ``iam``.

        Raises:
            SettingsError: none is configured (several are refused when settings are built).
        """
        if self.token is not None:
            return "token"
        if self.ak is not None:
            return "aksk"
        if self.iam_endpoint is not None:
            return "iam"
        raise SettingsError(
            f"{ENV_PREFIX}AUTH_TOKEN, {ENV_PREFIX}AK/{ENV_PREFIX}SK or {ENV_PREFIX}IAM_*:"
            " a worker needs exactly one way to authenticate; none is configured"
        )


class DeliverySettings(Section):
    """How a ticket is delivered, retried and kept: attempts, backoff, deadline, redelivery."""

    result_ttl_s: int = Field(
        default=7 * 24 * 3600,
        gt=0,
        description="How long a finished ticket (succeeded or failed) stays readable.",
    )
    visibility_timeout_s: int = Field(
        default=300,
        ge=5,
        description="Broker visibility timeout: an unacknowledged message is delivered again"
        " after this long (how soon a killed worker's tickets resume).",
    )
    max_attempts: int = Field(
        default=10, ge=1, le=1000, description="Calls to the API per ticket before it fails."
    )
    backoff_base_s: float = Field(
        default=1.0, gt=0, description="First retry waits up to this long (full jitter)."
    )
    backoff_max_s: float = Field(
        default=300.0, gt=0, description="No single retry wait exceeds this."
    )
    deadline_s: float = Field(
        default=24 * 3600,
        gt=0,
        description="A ticket's total time budget from submission; past it the ticket fails"
        " (after a last reconciliation when in doubt).",
    )


class FollowingSettings(Section):
    """Following each created task until it syncs (``HTAP_SYNC_FOLLOW`` and ``_FOLLOW_*``)."""

    enabled: bool = Field(
        default=True,
        description="Follow each created task until it syncs, fails, or HTAP_SYNC_FOLLOW_TIMEOUT_S"
        " passes (list, jobs and configuration calls, each API on its own bucket).",
    )
    timeout_s: float = Field(
        default=3600.0,
        gt=0,
        le=30 * 24 * 3600,
        description="How long after its creation a task may take to reach stage Full or"
        " Incremental before its sync state becomes unknown.",
    )
    interval_s: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="Pause between two follow rounds of one instance (one list call each).",
    )
    first_s: float = Field(
        default=5.0,
        ge=0,
        le=3600,
        description="Delay before the first follow round of a newly created task.",
    )


class BreakerSettings(Section):
    """The fleet-wide circuit breaker in front of the API."""

    threshold: int = Field(
        default=20, ge=1, description="Consecutive server failures that open the breaker."
    )
    cooldown_s: float = Field(
        default=30.0, gt=0, description="How long the breaker stays open before probing."
    )
    probes: int = Field(
        default=3, ge=1, description="Probe calls, all successful, that close the breaker."
    )


class IngressSettings(Section):
    """The HTTP ingress (``htap-sync api``)."""

    keys: SecretStr | None = Field(
        default=None,
        description="Comma-separated API keys the HTTP ingress accepts (X-API-Key or"
        " Authorization: Bearer). Required unless HTAP_SYNC_API_AUTH=off.",
    )
    auth: Literal["on", "off"] = Field(
        default="on", description="'off' lets the ingress accept requests without a key."
    )
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest request body the ingress reads."
    )
    max_items: int = Field(
        default=1000, ge=1, description="Most requests in one POST to the ingress."
    )
    max_wait_s: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="Longest long poll of a ticket lookup on the ingress (?wait_s=).",
    )

    def accepted_keys(self) -> list[str]:
        """The API keys of the ingress.

        Raises:
            SettingsError: authentication is on and no key is configured.
        """
        text = self.keys.get_secret_value() if self.keys else ""
        keys = [k.strip() for k in text.split(",") if k.strip()]
        if self.auth == "on" and not keys:
            raise SettingsError(
                f"{ENV_PREFIX}API_KEYS: the ingress needs at least one key, or"
                f" {ENV_PREFIX}API_AUTH=off to accept unauthenticated requests on purpose"
            )
        return keys


class ObservabilitySettings(Section):
    """Logs, metrics and Celery task events."""

    log_format: Literal["text", "json"] = Field(
        default="text", description="'json' writes one JSON object per log line."
    )
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Workers and the ingress serve Prometheus metrics on this port (unset:"
        " workers serve none, the ingress serves /metrics on its API port).",
    )
    task_events: bool = Field(
        default=False,
        description="Workers send Celery task events from the start (Flower turns them on"
        " remotely anyway). Off by default: with them on, a worker hung after a Redis restart.",
    )
