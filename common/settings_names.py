"""The documented flat variable names and where each lands in the nested settings.

``FLAT_NAMES`` is the one table: ``HTAP_SYNC_REDIS_URL`` is the flat name ``redis_url`` with the
prefix, and lands in ``settings.redis.url``. Environment variables, ``.env`` files, the
``overrides`` of ``load_settings`` and ``Settings.replace`` all go through it; the nested
spelling (``HTAP_SYNC_REDIS__URL``) works too, but a flat name wins over it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource

from htap_sync.common.settings_sections import ENV_PREFIX

NESTED_DELIMITER = "__"

# Flat name (the variable without HTAP_SYNC_, lower case) -> path of the field it sets.
FLAT_NAMES: dict[str, tuple[str, ...]] = {
    "redis_url": ("redis", "url"),
    "redis_sentinels": ("redis", "sentinels"),
    "redis_sentinel_master": ("redis", "sentinel_master"),
    "redis_sentinel_password": ("redis", "sentinel_password"),
    "redis_wait_replicas": ("redis", "wait_replicas"),
    "redis_wait_timeout_s": ("redis", "wait_timeout_s"),
    "allow_evicting_redis": ("redis", "allow_evicting"),
    "endpoint": ("cloud", "endpoint"),
    "allow_insecure_http": ("cloud", "allow_insecure_http"),
    "project_id": ("cloud", "project_id"),
    "language": ("cloud", "language"),
    "request_timeout_s": ("cloud", "request_timeout_s"),
    "auth_token": ("auth", "token"),
    "ak": ("auth", "ak"),
    "sk": ("auth", "sk"),
    "iam_endpoint": ("auth", "iam_endpoint"),
    "iam_user": ("auth", "iam_user"),
    "iam_password": ("auth", "iam_password"),
    "iam_domain": ("auth", "iam_domain"),
    "result_ttl_s": ("delivery", "result_ttl_s"),
    "visibility_timeout_s": ("delivery", "visibility_timeout_s"),
    "max_attempts": ("delivery", "max_attempts"),
    "backoff_base_s": ("delivery", "backoff_base_s"),
    "backoff_max_s": ("delivery", "backoff_max_s"),
    "deadline_s": ("delivery", "deadline_s"),
    "follow": ("following", "enabled"),
    "follow_timeout_s": ("following", "timeout_s"),
    "follow_interval_s": ("following", "interval_s"),
    "follow_first_s": ("following", "first_s"),
    "rate_limit_per_s": ("rate", "limit_per_s"),
    "rate_burst": ("rate", "burst"),
    "rate_bulk_min_share": ("rate", "bulk_min_share"),
    "tenant_weights": ("rate", "tenant_weights"),
    "breaker_threshold": ("breaker", "threshold"),
    "breaker_cooldown_s": ("breaker", "cooldown_s"),
    "breaker_probes": ("breaker", "probes"),
    "api_keys": ("ingress", "keys"),
    "api_auth": ("ingress", "auth"),
    "api_max_body_bytes": ("ingress", "max_body_bytes"),
    "api_max_items": ("ingress", "max_items"),
    "api_max_wait_s": ("ingress", "max_wait_s"),
    "log_format": ("observability", "log_format"),
    "metrics_port": ("observability", "metrics_port"),
    "task_events": ("observability", "task_events"),
    "queue": ("queue",),
    "key_prefix": ("key_prefix",),
    "max_queue_depth": ("max_queue_depth",),
    "batch_size": ("batch_size",),
    "lanes": ("lanes",),
}

# Variables read after HTAP_SYNC_<FLAT NAME>, in this order: the cloud SDK's own names.
OTHER_NAMES: dict[str, tuple[str, ...]] = {"ak": ("CLOUD_SDK_AK",), "sk": ("CLOUD_SDK_SK",)}

FLAT_OF_PATH: dict[tuple[str, ...], str] = {path: flat for flat, path in FLAT_NAMES.items()}


def env_name(flat: str) -> str:
    """The documented variable of a flat name: ``redis_url`` -> ``HTAP_SYNC_REDIS_URL``."""
    return f"{ENV_PREFIX}{flat.upper()}"


def nested_env_name(path: tuple[str, ...]) -> str:
    """The nested spelling of a field: ``("redis", "url")`` -> ``HTAP_SYNC_REDIS__URL``."""
    return ENV_PREFIX + NESTED_DELIMITER.join(path).upper()


def env_names(flat: str) -> tuple[str, ...]:
    """Every variable that sets a flat name, the one that wins first."""
    return (env_name(flat), *OTHER_NAMES.get(flat, ()))


def nest(values: Mapping[str, Any]) -> dict[str, Any]:
    """Flat names turned into nested values; other keys kept. A flat name wins over the same
    field given nested in ``values``.

    >>> nest({"redis_url": "redis://r/0", "queue": "q"})
    {'redis': {'url': 'redis://r/0'}, 'queue': 'q'}
    """
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key not in FLAT_NAMES:
            out[key] = dict(value) if isinstance(value, Mapping) else value
    for key, value in values.items():
        if key in FLAT_NAMES:
            *sections, field = FLAT_NAMES[key]
            target = out
            for section in sections:
                inner = target.get(section)
                target[section] = inner = dict(inner) if isinstance(inner, Mapping) else {}
                target = inner
            target[field] = value
    return out


def fields(settings_cls: type[BaseSettings]) -> Iterator[tuple[str, FieldInfo]]:
    """Each flat name with the pydantic field it lands in."""
    for flat, path in FLAT_NAMES.items():
        model: Any = settings_cls
        for part in path[:-1]:
            model = model.model_fields[part].annotation
        yield flat, model.model_fields[path[-1]]


class FlatNamesSource(PydanticBaseSettingsSource):
    """The documented flat variables of one mapping (the environment, or a ``.env`` file), as
    nested values. Placed before the nested source of the same mapping, so a flat name wins."""

    def __init__(self, settings_cls: type[BaseSettings], variables: EnvSettingsSource) -> None:
        super().__init__(settings_cls)
        self._variables = variables  # env_vars: names case-normalised as pydantic-settings does

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads the table

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        exact = self._variables.case_sensitive
        for flat in FLAT_NAMES:
            for name in env_names(flat):
                value = self._variables.env_vars.get(name if exact else name.lower())
                if value is not None:
                    found[flat] = value
                    break
        return nest(found)


class FlatInitSource(PydanticBaseSettingsSource):
    """The keyword arguments of ``Settings(...)`` with flat names nested: ``redis_url=...``
    sets ``redis.url``, over the same field given nested."""

    def __init__(self, settings_cls: type[BaseSettings], init: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self._init = init

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ nests what the init source holds

    def __call__(self) -> dict[str, Any]:
        return nest(self._init())
