"""The documented flat variables: each lands in its section, from the environment or overrides."""

from __future__ import annotations

import re
from operator import attrgetter
from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr

from htap_sync.common.settings import FLAT_NAMES, Settings, load_settings
from htap_sync.common.settings_names import env_name

# Every documented variable, a value other than its default, the field it lands in, and the
# value read there. A setting added to the table must be added here.
DOCUMENTED = [
    ("HTAP_SYNC_REDIS_URL", "redis://cache:6380/2", "redis.url", "redis://cache:6380/2"),
    ("HTAP_SYNC_REDIS_SENTINELS", "s1:26379", "redis.sentinels", "s1:26379"),
    ("HTAP_SYNC_REDIS_SENTINEL_MASTER", "m", "redis.sentinel_master", "m"),
    ("HTAP_SYNC_REDIS_SENTINEL_PASSWORD", "spw", "redis.sentinel_password", "spw"),
    ("HTAP_SYNC_REDIS_WAIT_REPLICAS", "2", "redis.wait_replicas", 2),
    ("HTAP_SYNC_REDIS_WAIT_TIMEOUT_S", "3.5", "redis.wait_timeout_s", 3.5),
    ("HTAP_SYNC_ALLOW_EVICTING_REDIS", "true", "redis.allow_evicting", True),
    (
        "HTAP_SYNC_ENDPOINT",
        "https://gaussdb.example.com",
        "cloud.endpoint",
        "https://gaussdb.example.com/",
    ),
    ("HTAP_SYNC_ALLOW_INSECURE_HTTP", "true", "cloud.allow_insecure_http", True),
    (
        "HTAP_SYNC_PROJECT_ID",
        "0123456789abcdef0123456789abcdef",
        "cloud.project_id",
        "0123456789abcdef0123456789abcdef",
    ),
    ("HTAP_SYNC_LANGUAGE", "zh-cn", "cloud.language", "zh-cn"),
    ("HTAP_SYNC_REQUEST_TIMEOUT_S", "12.5", "cloud.request_timeout_s", 12.5),
    ("HTAP_SYNC_AUTH_TOKEN", "tok", "auth.token", "tok"),
    ("HTAP_SYNC_AK", "ak1", "auth.ak", "ak1"),
    ("HTAP_SYNC_SK", "sk1", "auth.sk", "sk1"),
    (
        "HTAP_SYNC_IAM_ENDPOINT",
        "https://iam.example.com",
        "auth.iam_endpoint",
        "https://iam.example.com/",
    ),
    ("HTAP_SYNC_IAM_USER", "u", "auth.iam_user", "u"),
    ("HTAP_SYNC_IAM_PASSWORD", "pw", "auth.iam_password", "pw"),
    ("HTAP_SYNC_IAM_DOMAIN", "d", "auth.iam_domain", "d"),
    ("HTAP_SYNC_RESULT_TTL_S", "86400", "delivery.result_ttl_s", 86400),
    ("HTAP_SYNC_VISIBILITY_TIMEOUT_S", "400", "delivery.visibility_timeout_s", 400),
    ("HTAP_SYNC_MAX_ATTEMPTS", "4", "delivery.max_attempts", 4),
    ("HTAP_SYNC_BACKOFF_BASE_S", "0.5", "delivery.backoff_base_s", 0.5),
    ("HTAP_SYNC_BACKOFF_MAX_S", "60", "delivery.backoff_max_s", 60.0),
    ("HTAP_SYNC_DEADLINE_S", "7200", "delivery.deadline_s", 7200.0),
    ("HTAP_SYNC_FOLLOW", "false", "following.enabled", False),
    ("HTAP_SYNC_FOLLOW_TIMEOUT_S", "120", "following.timeout_s", 120.0),
    ("HTAP_SYNC_FOLLOW_INTERVAL_S", "2", "following.interval_s", 2.0),
    ("HTAP_SYNC_FOLLOW_FIRST_S", "0", "following.first_s", 0.0),
    ("HTAP_SYNC_RATE_LIMIT_PER_S", "2.5", "rate.limit_per_s", 2.5),
    ("HTAP_SYNC_RATE_BURST", "7", "rate.burst", 7),
    ("HTAP_SYNC_RATE_BULK_MIN_SHARE", "0.3", "rate.bulk_min_share", 0.3),
    ("HTAP_SYNC_TENANT_WEIGHTS", "a=2,b=1", "rate.tenant_weights", "a=2,b=1"),
    ("HTAP_SYNC_BREAKER_THRESHOLD", "5", "breaker.threshold", 5),
    ("HTAP_SYNC_BREAKER_COOLDOWN_S", "9", "breaker.cooldown_s", 9.0),
    ("HTAP_SYNC_BREAKER_PROBES", "2", "breaker.probes", 2),
    ("HTAP_SYNC_API_KEYS", "k1,k2", "ingress.keys", "k1,k2"),
    ("HTAP_SYNC_API_AUTH", "off", "ingress.auth", "off"),
    ("HTAP_SYNC_API_MAX_BODY_BYTES", "2048", "ingress.max_body_bytes", 2048),
    ("HTAP_SYNC_API_MAX_ITEMS", "10", "ingress.max_items", 10),
    ("HTAP_SYNC_API_MAX_WAIT_S", "5", "ingress.max_wait_s", 5.0),
    ("HTAP_SYNC_LOG_FORMAT", "json", "observability.log_format", "json"),
    ("HTAP_SYNC_METRICS_PORT", "9100", "observability.metrics_port", 9100),
    ("HTAP_SYNC_TASK_EVENTS", "true", "observability.task_events", True),
    ("HTAP_SYNC_QUEUE", "q1", "queue", "q1"),
    ("HTAP_SYNC_KEY_PREFIX", "p1", "key_prefix", "p1"),
    ("HTAP_SYNC_MAX_QUEUE_DEPTH", "50", "max_queue_depth", 50),
    ("HTAP_SYNC_BATCH_SIZE", "4", "batch_size", 4),
    ("HTAP_SYNC_LANES", "false", "lanes", False),
]
# Settings that are only valid together.
_TOGETHER = [
    {"HTAP_SYNC_REDIS_SENTINELS", "HTAP_SYNC_REDIS_SENTINEL_MASTER"},
    {"HTAP_SYNC_AK", "HTAP_SYNC_SK"},
    {
        "HTAP_SYNC_IAM_ENDPOINT",
        "HTAP_SYNC_IAM_USER",
        "HTAP_SYNC_IAM_PASSWORD",
        "HTAP_SYNC_IAM_DOMAIN",
    },
]
_SAMPLE = {name: value for name, value, _, _ in DOCUMENTED}


def _read(settings: Settings, path: str) -> object:
    value = attrgetter(path)(settings)
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return value if isinstance(value, bool | int | float | str | None) else str(value)


def _sections() -> dict[str, type[BaseModel]]:
    return {
        name: info.annotation
        for name, info in Settings.model_fields.items()
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
    }


def _leaves() -> set[str]:
    """Every field of Settings as a path: ``redis.url``, ..., ``queue``."""
    sections = _sections()
    inner = {f"{name}.{field}" for name, model in sections.items() for field in model.model_fields}
    return inner | (Settings.model_fields.keys() - sections.keys())


def _together(name: str) -> set[str]:
    return next((group for group in _TOGETHER if name in group), {name})


def test_the_documented_list_is_every_setting() -> None:
    """DOCUMENTED names each variable of the table once, and reaches every field once."""
    assert [name for name, *_ in DOCUMENTED] == [env_name(flat) for flat in FLAT_NAMES]
    assert sorted(path for _, _, path, _ in DOCUMENTED) == sorted(_leaves())


def test_no_section_is_named_like_a_variable() -> None:
    """HTAP_SYNC_<SECTION> is read as the section in JSON: it must not be a documented flat
    variable (HTAP_SYNC_FOLLOW is a bool; its section is called ``following``)."""
    assert "following" in _sections()
    assert not _sections().keys() & FLAT_NAMES.keys()


@pytest.mark.parametrize(("name", "value", "path", "expected"), DOCUMENTED)
def test_each_documented_variable_lands_in_its_section(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, path: str, expected: object
) -> None:
    """HTAP_SYNC_<FLAT NAME> sets settings.<section>.<field> (with its companions, if any)."""
    for each in _together(name):
        monkeypatch.setenv(each, _SAMPLE[each])
    assert _read(load_settings(env_file=None), path) == expected


@pytest.mark.parametrize(("name", "value", "path", "expected"), DOCUMENTED)
def test_each_flat_override_lands_in_its_section(
    name: str, value: str, path: str, expected: object
) -> None:
    """load_settings({"<flat name>": ...}), as the CLI and tests call it, sets the same field."""
    overrides = {each.removeprefix("HTAP_SYNC_").lower(): _SAMPLE[each] for each in _together(name)}
    assert _read(load_settings(overrides, env_file=None), path) == expected


def test_the_readme_table_gives_each_variable_its_field() -> None:
    """The README's settings table names, for each variable, the field it sets in Python."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    documented: dict[str, str] = {}
    for line in readme.splitlines():
        if line.startswith("| `HTAP_SYNC_"):
            cells = line.split(" | ")
            names = re.findall(r"`(HTAP_SYNC_[A-Z_]+)`", cells[0])
            documented.update(zip(names, re.findall(r"`([a-z_.]+)`", cells[1]), strict=True))
    assert documented == {env_name(flat): ".".join(path) for flat, path in FLAT_NAMES.items()}
