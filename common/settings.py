"""Settings from the environment (prefix ``HTAP_SYNC_``) or ``.env``, built once at the edge."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    AnyHttpUrl,
    Field,
    RedisDsn,
    SecretStr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from htap_sync.common.errors import SettingsError

ENV_PREFIX = "HTAP_SYNC_"

ProjectId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{32}$")]
KeyPrefix = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]


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


class Settings(BaseSettings):
    """Every setting of producers and workers. Build with :func:`load_settings`.

    Environment variables are the field names in upper case with the ``HTAP_SYNC_`` prefix.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
        # inf and nan are never a rate, a timeout or a size: refused, naming the variable.
        allow_inf_nan=False,
    )

    redis_url: RedisDsn = Field(
        default=RedisDsn("redis://127.0.0.1:6379/0"),
        description="Redis for the broker queue and the ticket store (results).",
    )
    redis_sentinels: str | None = Field(
        default=None,
        description="Redis Sentinel addresses, host:port,host:port,... With"
        " HTAP_SYNC_REDIS_SENTINEL_MASTER, every Redis client and the broker find the master"
        " through them and follow a failover; HTAP_SYNC_REDIS_URL then gives only the"
        " database, user and password.",
    )
    redis_sentinel_master: str | None = Field(
        default=None, description="The Sentinel group's master name (e.g. mymaster)."
    )
    redis_sentinel_password: SecretStr | None = Field(
        default=None, description="Password of the sentinels themselves, if they require one."
    )
    redis_wait_replicas: int = Field(
        default=1,
        ge=0,
        le=16,
        description="Before each create call, wait until this many replicas (at most as many as"
        " are connected) hold the ticket's in-doubt mark, so that a failover cannot lose it."
        " 0 turns the wait off.",
    )
    redis_wait_timeout_s: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="How long a worker waits for those replicas before it puts the call off.",
    )
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
    auth_token: SecretStr | None = Field(
        default=None, description="Static IAM token sent as X-Auth-Token."
    )
    ak: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices(f"{ENV_PREFIX}AK", "CLOUD_SDK_AK", "ak"),
        description="Access key for SDK-HMAC-SHA256 signing (also read from CLOUD_SDK_AK).",
    )
    sk: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices(f"{ENV_PREFIX}SK", "CLOUD_SDK_SK", "sk"),
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
    language: Literal["en-us", "zh-cn"] = Field(
        default="en-us", description="X-Language header: language of the API's error messages."
    )
    request_timeout_s: float = Field(
        default=30.0, gt=0, le=600, description="Timeout of one HTTP call to the API."
    )
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
    follow: bool = Field(
        default=True,
        description="Follow each created task until it syncs, fails, or HTAP_SYNC_FOLLOW_TIMEOUT_S"
        " passes (list, jobs and configuration calls, each API on its own bucket).",
    )
    follow_timeout_s: float = Field(
        default=3600.0,
        gt=0,
        le=30 * 24 * 3600,
        description="How long after its creation a task may take to reach stage Full or"
        " Incremental before its sync state becomes unknown.",
    )
    follow_interval_s: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="Pause between two follow rounds of one instance (one list call each).",
    )
    follow_first_s: float = Field(
        default=5.0,
        ge=0,
        le=3600,
        description="Delay before the first follow round of a newly created task.",
    )
    allow_evicting_redis: bool = Field(
        default=False,
        description="Let workers start on a Redis whose maxmemory-policy may evict keys"
        " (queued requests could be lost).",
    )
    rate_limit_per_s: float = Field(
        default=10.0,
        gt=0,
        description="Create calls per second for the whole fleet (all workers, all hosts),"
        " per endpoint and project. The list call has a bucket of its own at the same rate.",
    )
    rate_burst: int = Field(
        default=10, ge=1, description="Calls the bucket lets through at once after a pause."
    )
    breaker_threshold: int = Field(
        default=20, ge=1, description="Consecutive server failures that open the breaker."
    )
    breaker_cooldown_s: float = Field(
        default=30.0, gt=0, description="How long the breaker stays open before probing."
    )
    breaker_probes: int = Field(
        default=3, ge=1, description="Probe calls, all successful, that close the breaker."
    )
    max_queue_depth: int | None = Field(
        default=None,
        ge=1,
        description="Bulk enqueueing waits while the queue holds more messages than this"
        " (a bulk message carries up to HTAP_SYNC_BATCH_SIZE tickets; unset: no limit).",
    )
    batch_size: int = Field(
        default=16,
        ge=1,
        le=256,
        description="Tickets per broker message for bulk work (enqueue_many, bulk files, the"
        " ingress batch): a worker runs a batch's calls concurrently. 1 turns batching off.",
    )
    api_keys: SecretStr | None = Field(
        default=None,
        description="Comma-separated API keys the HTTP ingress accepts (X-API-Key or"
        " Authorization: Bearer). Required unless HTAP_SYNC_API_AUTH=off.",
    )
    api_auth: Literal["on", "off"] = Field(
        default="on", description="'off' lets the ingress accept requests without a key."
    )
    api_max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest request body the ingress reads."
    )
    api_max_items: int = Field(
        default=1000, ge=1, description="Most requests in one POST to the ingress."
    )
    api_max_wait_s: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="Longest long poll of a ticket lookup on the ingress (?wait_s=).",
    )
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
    queue: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")] = Field(
        default="htap-sync", description="Name of the Celery queue."
    )
    key_prefix: KeyPrefix = Field(
        default="htap-sync", description="Prefix of every Redis key the ticket store writes."
    )

    @field_validator("redis_sentinels", "redis_sentinel_master", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # compose passes ${VAR:-} as an empty string: the same as not set.
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if (self.redis_sentinels is None) != (self.redis_sentinel_master is None):
            raise ValueError(
                f"redis_sentinels: {ENV_PREFIX}REDIS_SENTINELS and"
                f" {ENV_PREFIX}REDIS_SENTINEL_MASTER go together"
            )
        self.sentinel_hosts()  # a malformed address list fails at start, naming the variable
        for name in ("endpoint", "iam_endpoint"):
            url = getattr(self, name)
            insecure = url is not None and url.scheme == "http" and not is_loopback(url.host)
            if insecure and not self.allow_insecure_http:
                raise ValueError(
                    f"{name}: plain http:// is allowed only on loopback; use https:// or"
                    f" set {ENV_PREFIX}ALLOW_INSECURE_HTTP=true"
                )
        if (self.ak is None) != (self.sk is None):
            raise ValueError(
                f"ak: {ENV_PREFIX}AK and {ENV_PREFIX}SK (or CLOUD_SDK_AK and CLOUD_SDK_SK) go"
                " together"
            )
        iam = {n: getattr(self, f"iam_{n}") for n in ("endpoint", "user", "password", "domain")}
        if any(v is not None for v in iam.values()) and any(v is None for v in iam.values()):
            missing = ", ".join(f"{ENV_PREFIX}IAM_{n.upper()}" for n, v in iam.items() if v is None)
            raise ValueError(f"iam_endpoint: IAM tokens also need {missing}")
        if len(self.auth_modes) > 1:
            raise ValueError(
                "auth_token: configure exactly one way to authenticate, not "
                + " and ".join(self.auth_modes)
            )
        if self.lease_s >= self.visibility_timeout_s:
            raise ValueError(
                f"visibility_timeout_s: must exceed 2 x {ENV_PREFIX}REQUEST_TIMEOUT_S + 5 s, so"
                " that a message is never delivered again while its worker still calls the API"
            )
        return self

    @property
    def lease_s(self) -> float:
        """How long one attempt may hold a ticket before another delivery may take it over."""
        return 2 * self.request_timeout_s + 5

    def environ(self) -> dict[str, str]:
        """These settings as ``HTAP_SYNC_*`` variables, for a child process.

        Contains secrets in clear text: pass it to a process, never print or log it.
        """
        env: dict[str, str] = {}
        for name, value in self:
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, bool):
                value = "true" if value else "false"
            env[f"{ENV_PREFIX}{name.upper()}"] = str(value)
        return env

    @property
    def redis_display(self) -> str:
        """Where Redis is, for messages and logs: the URL without its password, or the
        sentinels and master name."""
        if self.redis_sentinels:
            return f"sentinels {self.redis_sentinels} (master {self.redis_sentinel_master})"
        url = self.redis_url
        auth = f"{url.username or ''}:***@" if url.password else ""
        port = f":{url.port}" if url.port else ""
        return f"{url.scheme}://{auth}{url.host}{port}{url.path or ''}"

    def sentinel_hosts(self) -> list[tuple[str, int]]:
        """The sentinels as (host, port) pairs; empty without Sentinel.

        Raises:
            ValueError: an address is not ``host:port`` with a port in 1-65535.
        """
        hosts: list[tuple[str, int]] = []
        for part in (self.redis_sentinels or "").split(","):
            text = part.strip()
            if not text:
                continue
            host, sep, port = text.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(
                    "redis_sentinels: each address must be host:port (port 1-65535),"
                    " comma-separated"
                )
            hosts.append((host.strip("[]"), int(port)))
        if self.redis_sentinels is not None and not hosts:
            raise ValueError("redis_sentinels: name at least one sentinel as host:port")
        return hosts

    @property
    def auth_modes(self) -> list[str]:
        """The authentication modes configured, named by their variables."""
        modes = []
        if self.auth_token is not None:
            modes.append(f"{ENV_PREFIX}AUTH_TOKEN")
        if self.ak is not None:
            modes.append(f"{ENV_PREFIX}AK/{ENV_PREFIX}SK")
        if self.iam_endpoint is not None:
            modes.append(f"{ENV_PREFIX}IAM_*")
        return modes

    def ingress_keys(self) -> list[str]:
        """The API keys of the ingress.

        Raises:
            SettingsError: authentication is on and no key is configured.
        """
        keys = [
            k.strip()
            for k in (self.api_keys.get_secret_value() if self.api_keys else "").split(",")
            if k.strip()
        ]
        if self.api_auth == "on" and not keys:
            raise SettingsError(
                f"{ENV_PREFIX}API_KEYS: the ingress needs at least one key, or"
                f" {ENV_PREFIX}API_AUTH=off to accept unauthenticated requests on purpose"
            )
        return keys

    def require_auth(self) -> str:
        """The one configured mode: ``token``, ``aksk`` or ``iam``.

        Raises:
            SettingsError: none is configured (several are refused when settings are built).
        """
        if self.auth_token is not None:
            return "token"
        if self.ak is not None:
            return "aksk"
        if self.iam_endpoint is not None:
            return "iam"
        raise SettingsError(
            f"{ENV_PREFIX}AUTH_TOKEN, {ENV_PREFIX}AK/{ENV_PREFIX}SK or {ENV_PREFIX}IAM_*:"
            " a worker needs exactly one way to authenticate; none is configured"
        )

    @property
    def require_endpoint(self) -> str:
        """The endpoint as a string without a trailing slash; SettingsError when unset."""
        if self.endpoint is None:
            raise SettingsError(f"{ENV_PREFIX}ENDPOINT: required to run a worker")
        return str(self.endpoint).rstrip("/")


def _env_name(loc: tuple[int | str, ...]) -> str:
    field = str(loc[0]) if loc else ""
    return f"{ENV_PREFIX}{field.upper()}" if field else "settings"


def load_settings(
    overrides: Mapping[str, Any] | None = None, *, env_file: str | None = ".env"
) -> Settings:
    """Build the settings from the environment, a ``.env`` file and explicit overrides.

    Args:
        overrides: field values that win over the environment (used by the CLI and tests).
        env_file: the dotenv file to read, if it exists; None reads none.

    Raises:
        SettingsError: naming every ``HTAP_SYNC_*`` variable at fault; values are never echoed,
            since some are secrets.
    """
    try:
        return Settings(_env_file=env_file, **dict(overrides or {}))
    except ValidationError as exc:
        lines = []
        for err in exc.errors(include_input=False, include_url=False):
            message = str(err["msg"]).removeprefix("Value error, ")
            name = _env_name(err["loc"])
            if name == "settings" and ":" in message:
                field, _, rest = message.partition(":")
                name, message = _env_name((field,)), rest.strip()
            lines.append(f"{name}: {message}")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None
