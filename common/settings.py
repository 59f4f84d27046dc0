"""Settings from the environment (prefix ``HTAP_SYNC_``) or ``.env``, built once at the edge.

The settings are grouped by role: ``settings.redis``, ``.cloud``, ``.auth``, ``.delivery``,
``.following``, ``.rate``, ``.breaker``, ``.ingress``, ``.observability`` (models in
``settings_sections``), plus ``queue``, ``key_prefix``, ``max_queue_depth`` and ``batch_size``
at the top. The documented variables stay flat (``HTAP_SYNC_REDIS_URL`` sets
``settings.redis.url``; the table is ``settings_names.FLAT_NAMES``); the nested spelling
``HTAP_SYNC_REDIS__URL`` works too, and a flat name wins over it. An empty value, in the
environment or ``.env``, is the same as no value (the default, or the next source's value).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from functools import reduce
from pathlib import Path
from typing import Annotated, Any

from dotenv import dotenv_values
from pydantic import Field, SecretStr, StringConstraints, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings import SettingsError as SourceError
from pydantic_settings.sources import EnvSettingsSource

from htap_sync.common.errors import SettingsError
from htap_sync.common.settings_names import (
    FLAT_NAMES,
    FLAT_OF_PATH,
    NESTED_DELIMITER,
    FlatInitSource,
    FlatNamesSource,
    env_name,
    env_names,
    nested_env_name,
)
from htap_sync.common.settings_rate import RateSettings
from htap_sync.common.settings_sections import (
    ENV_PREFIX,
    AuthSettings,
    BreakerSettings,
    CloudSettings,
    DeliverySettings,
    FollowingSettings,
    IngressSettings,
    ObservabilitySettings,
    RedisSettings,
    is_loopback,
)

__all__ = ["ENV_PREFIX", "FLAT_NAMES", "Settings", "is_loopback", "load_settings"]

KeyPrefix = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]


class Settings(BaseSettings):
    """Every setting of producers and workers, by section. Build with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=NESTED_DELIMITER,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        # inf and nan are never a rate, a timeout or a size: refused, naming the variable.
        allow_inf_nan=False,
        # One rule for every setting, in the environment and in .env, whatever its spelling:
        # an empty value (compose's ${VAR:-}, .env.example's HTAP_SYNC_AUTH_TOKEN=) is unset.
        env_ignore_empty=True,
    )

    redis: RedisSettings = Field(default_factory=RedisSettings)
    cloud: CloudSettings = Field(default_factory=CloudSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    following: FollowingSettings = Field(default_factory=FollowingSettings)
    rate: RateSettings = Field(default_factory=RateSettings)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)
    ingress: IngressSettings = Field(default_factory=IngressSettings)
    observability: ObservabilitySettings = Field(default_factory=ObservabilitySettings)
    queue: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")] = Field(
        default="htap-sync", description="Name of the Celery queue."
    )
    key_prefix: KeyPrefix = Field(
        default="htap-sync", description="Prefix of every Redis key the ticket store writes."
    )
    max_queue_depth: int | None = Field(
        default=None,
        ge=1,
        description="Bulk enqueueing waits while the queue holds more messages than this"
        " (a bulk message carries up to HTAP_SYNC_BATCH_SIZE tickets; unset: no limit).",
    )
    lanes: bool = Field(
        default=True,
        description="Two queues and two lanes of the rate: interactive (single requests) before"
        " bulk (files, lists). false: one queue, first come first served.",
    )
    batch_size: int = Field(
        default=16,
        ge=1,
        le=256,
        description="Tickets per broker message for bulk work (enqueue_many, bulk files, the"
        " ingress batch): a worker runs a batch's calls concurrently. 1 turns batching off.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the environment, then ``.env``; in each, the flat names first."""
        assert isinstance(env_settings, EnvSettingsSource)
        assert isinstance(dotenv_settings, EnvSettingsSource)
        return (
            FlatInitSource(settings_cls, init_settings),
            FlatNamesSource(settings_cls, env_settings),
            env_settings,
            FlatNamesSource(settings_cls, dotenv_settings),
            dotenv_settings,
            file_secret_settings,
        )

    @model_validator(mode="after")
    def _check(self) -> Settings:
        for flat, url in (
            ("endpoint", self.cloud.endpoint),
            ("iam_endpoint", self.auth.iam_endpoint),
        ):
            insecure = url is not None and url.scheme == "http" and not is_loopback(url.host)
            if insecure and not self.cloud.allow_insecure_http:
                raise ValueError(
                    f"{flat}: plain http:// is allowed only on loopback; use https:// or"
                    f" set {ENV_PREFIX}ALLOW_INSECURE_HTTP=true"
                )
        if self.lease_s >= self.delivery.visibility_timeout_s:
            raise ValueError(
                f"visibility_timeout_s: must exceed 2 x {ENV_PREFIX}REQUEST_TIMEOUT_S + 5 s, so"
                " that a message is never delivered again while its worker still calls the API"
            )
        return self

    @property
    def lease_s(self) -> float:
        """How long one attempt may hold a ticket before another delivery may take it over."""
        return 2 * self.cloud.request_timeout_s + 5

    @property
    def in_flight_s(self) -> float:
        """How long after its in-doubt mark a dead holder's create call may still reach the API.

        The holder sends the call at most the replica wait after the mark, and the call ends
        (answered, timed out, or cut by the process's death) within the call's timeout; 5 s
        more for the API to act on it. A live delivery trusts a list call made after its own
        timed-out call the same way. A ticket taken over from a dead holder is looked at then,
        not at the end of the holder's lease (which bounds a live holder: 2 calls and more).
        """
        return self.cloud.request_timeout_s + self.redis.wait_timeout_s + 5

    def environ(self) -> dict[str, str]:
        """These settings as the documented ``HTAP_SYNC_*`` variables, for a child process.

        Contains secrets in clear text: pass it to a process, never print or log it.
        """
        env: dict[str, str] = {}
        for flat, path in FLAT_NAMES.items():
            value: Any = reduce(getattr, path, self)
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, bool):
                value = "true" if value else "false"
            env[env_name(flat)] = str(value)
        return env

    def replace(self, **changes: Any) -> Settings:
        """A copy with some settings changed, named like the variables (``redis_url=...``),
        checked like :func:`load_settings`; every other setting keeps its value (neither the
        environment nor ``.env`` changes it).

        Raises:
            SettingsError: a value is wrong, naming its variable.
        """
        unknown = sorted(set(changes) - FLAT_NAMES.keys())
        if unknown:
            raise TypeError(f"replace: no setting named {', '.join(unknown)}")
        return _build({**self.model_dump(), **changes}, env_file=None)


def _present(env_file: str | None) -> set[str]:
    """The variable names set (not empty) in the environment or the dotenv file, upper case."""
    names = {name.upper() for name, value in os.environ.items() if value}
    if env_file is not None and Path(env_file).is_file():
        names.update(name.upper() for name, value in dotenv_values(env_file).items() if value)
    return names


def _variable(path: tuple[str, ...], present: set[str]) -> str:
    """The variable to name for a field: the one the user set (a flat name, CLOUD_SDK_*, or the
    nested spelling), else the documented flat name."""
    flat = FLAT_OF_PATH.get(path)
    nested = nested_env_name(path) if path else "settings"
    if flat is None:
        return nested
    set_by = [name for name in (*env_names(flat), nested) if name in present]
    return set_by[0] if set_by else env_name(flat)


def _line(err: Mapping[str, Any], present: set[str]) -> str:
    message = str(err["msg"]).removeprefix("Value error, ")
    loc = tuple(str(part) for part in err["loc"])
    path = next((loc[:n] for n in range(len(loc), 0, -1) if loc[:n] in FLAT_OF_PATH), loc)
    if path not in FLAT_OF_PATH:
        # A check of a section or of the whole: its message starts with the field at fault.
        head, sep, rest = message.partition(":")
        named = (*path, head) if (*path, head) in FLAT_OF_PATH else FLAT_NAMES.get(head)
        if sep and named in FLAT_OF_PATH:
            path, message = named, rest.strip()
    return f"{_variable(path, present)}: {message}"


def _build(values: Mapping[str, Any], *, env_file: str | None) -> Settings:
    try:
        return Settings(_env_file=env_file, **values)
    except ValidationError as exc:
        present = _present(env_file)
        lines = [_line(e, present) for e in exc.errors(include_input=False, include_url=False)]
    except SourceError as exc:  # a section given as JSON (HTAP_SYNC_REDIS='...') that is not
        found = re.search(r'field "(\w+)"', str(exc))
        lines = [f"{nested_env_name((found[1],)) if found else 'settings'}: not valid JSON"]
    raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None


def load_settings(
    overrides: Mapping[str, Any] | None = None, *, env_file: str | None = ".env"
) -> Settings:
    """Build the settings from the environment, a ``.env`` file and explicit overrides.

    Args:
        overrides: values that win over the environment (used by the CLI and tests), by flat
            name (``{"redis_url": ...}``, the variable without its prefix) or by section
            (``{"redis": {"url": ...}}``).
        env_file: the dotenv file to read, if it exists; None reads none.

    Raises:
        SettingsError: naming every ``HTAP_SYNC_*`` variable at fault; values are never echoed,
            since some are secrets.
    """
    return _build(dict(overrides or {}), env_file=env_file)
