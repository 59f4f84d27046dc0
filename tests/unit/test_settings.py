"""Settings: defaults, the HTAP_SYNC_ prefix, .env files, and errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from htap_sync.common.connections import read_replicas
from htap_sync.common.errors import SettingsError
from htap_sync.common.settings import Settings, load_settings
from htap_sync.common.settings_names import fields as settings_fields


def test_defaults_are_safe() -> None:
    """Without configuration: local Redis, English messages, 7-day results, TLS required."""
    s = load_settings(env_file=None)
    assert str(s.redis.url) == "redis://127.0.0.1:6379/0"
    assert s.cloud.language == "en-us"
    assert s.delivery.result_ttl_s == 7 * 24 * 3600
    assert s.cloud.endpoint is None
    assert s.auth.token is None
    assert s.cloud.allow_insecure_http is False


def test_environment_variables_use_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each setting is read from HTAP_SYNC_<NAME>."""
    monkeypatch.setenv("HTAP_SYNC_ENDPOINT", "https://gaussdb.cn-north-4.myhuaweicloud.com")
    monkeypatch.setenv("HTAP_SYNC_PROJECT_ID", "0123456789abcdef0123456789abcdef")
    monkeypatch.setenv("HTAP_SYNC_REQUEST_TIMEOUT_S", "12.5")
    monkeypatch.setenv("HTAP_SYNC_LANGUAGE", "zh-cn")
    monkeypatch.setenv("HTAP_SYNC_RESULT_TTL_S", "86400")
    s = load_settings(env_file=None)
    assert s.cloud.require_endpoint == "https://gaussdb.cn-north-4.myhuaweicloud.com"
    assert s.cloud.project_id == "0123456789abcdef0123456789abcdef"
    assert s.cloud.request_timeout_s == 12.5
    assert s.cloud.language == "zh-cn"
    assert s.delivery.result_ttl_s == 86400


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    """A .env file supplies settings the environment does not."""
    env = tmp_path / ".env"
    env.write_text("HTAP_SYNC_QUEUE=from-dotenv\n")
    assert load_settings(env_file=str(env)).queue == "from-dotenv"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HTAP_SYNC_REQUEST_TIMEOUT_S", "soon"),
        ("HTAP_SYNC_REQUEST_TIMEOUT_S", "-1"),
        ("HTAP_SYNC_RESULT_TTL_S", "0"),
        ("HTAP_SYNC_LANGUAGE", "fr-fr"),
        ("HTAP_SYNC_PROJECT_ID", "not-a-project"),
        ("HTAP_SYNC_REDIS_URL", "http://127.0.0.1:6379"),
        ("HTAP_SYNC_ENDPOINT", "not a url"),
        ("HTAP_SYNC_ENDPOINT", "http://gaussdb.example.com"),
        ("HTAP_SYNC_VISIBILITY_TIMEOUT_S", "20"),
    ],
)
def test_a_bad_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    """A wrong setting raises SettingsError that names the variable and does not echo the value."""
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings(env_file=None)
    assert name in str(info.value)
    if len(value) > 3:  # short values ("0", "-1") occur in any message
        assert value not in str(info.value)


def test_plain_http_allowed_on_loopback_or_when_told(monkeypatch: pytest.MonkeyPatch) -> None:
    """http:// works for 127.0.0.1 and localhost, and elsewhere only with ALLOW_INSECURE_HTTP."""
    assert load_settings({"endpoint": "http://127.0.0.1:8090"}, env_file=None).cloud.endpoint
    assert load_settings({"endpoint": "http://localhost:8090"}, env_file=None).cloud.endpoint
    monkeypatch.setenv("HTAP_SYNC_ALLOW_INSECURE_HTTP", "true")
    assert load_settings({"endpoint": "http://simulator:8090"}, env_file=None).cloud.endpoint


def test_worker_needs_an_endpoint() -> None:
    """A worker without HTAP_SYNC_ENDPOINT stops with a message naming it."""
    with pytest.raises(SettingsError, match="HTAP_SYNC_ENDPOINT"):
        _ = load_settings(env_file=None).cloud.require_endpoint


def test_secrets_are_hidden_but_passed_to_children() -> None:
    """The token never shows in repr or dumps, but environ() hands it to a worker process."""
    s = load_settings({"auth_token": "s3cr3t-token"}, env_file=None)
    assert "s3cr3t-token" not in repr(s)
    assert "s3cr3t-token" not in str(s.model_dump())
    assert s.environ()["HTAP_SYNC_AUTH_TOKEN"] == "s3cr3t-token"
    assert (
        load_settings(
            {k.removeprefix("HTAP_SYNC_").lower(): v for k, v in s.environ().items()}, env_file=None
        )
        == s
    )


def test_sdk_variables_supply_the_key_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    """CLOUD_SDK_AK / CLOUD_SDK_SK, as the SDK's examples use them, select AK/SK mode."""
    monkeypatch.setenv("CLOUD_SDK_AK", "QTWAOYTTINDUT2QVKYUC")
    monkeypatch.setenv("CLOUD_SDK_SK", "sk-from-sdk-variable")
    s = load_settings(env_file=None)
    assert s.auth.require_mode() == "aksk"
    assert s.auth.sk is not None and s.auth.sk.get_secret_value() == "sk-from-sdk-variable"
    assert "sk-from-sdk-variable" not in repr(s)


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"auth_token": "t", "ak": "a", "sk": "b"}, ["HTAP_SYNC_AUTH_TOKEN", "HTAP_SYNC_AK"]),
        ({"ak": "a"}, ["HTAP_SYNC_AK", "HTAP_SYNC_SK"]),
        (
            {"iam_endpoint": "https://iam.example.com", "iam_user": "u"},
            ["HTAP_SYNC_IAM_PASSWORD", "HTAP_SYNC_IAM_DOMAIN"],
        ),
    ],
)
def test_exactly_one_complete_auth_mode(overrides: dict[str, str], named: list[str]) -> None:
    """Two modes at once, or half a mode, is refused with the variables named."""
    with pytest.raises(SettingsError) as info:
        load_settings(overrides, env_file=None)
    for name in named:
        assert name in str(info.value)


def test_a_worker_needs_an_auth_mode() -> None:
    """Without any credential, auth.require_mode() names the three ways to provide one."""
    with pytest.raises(SettingsError) as info:
        load_settings(env_file=None).auth.require_mode()
    assert "HTAP_SYNC_AUTH_TOKEN" in str(info.value) and "HTAP_SYNC_IAM_" in str(info.value)


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "Infinity"])
@pytest.mark.parametrize("name", ["RATE_LIMIT_PER_S", "REQUEST_TIMEOUT_S", "DEADLINE_S"])
def test_inf_and_nan_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    """A float setting of inf or nan is refused at start, naming the variable."""
    monkeypatch.setenv(f"HTAP_SYNC_{name}", value)
    with pytest.raises(SettingsError, match=f"HTAP_SYNC_{name}"):
        load_settings(env_file=None)


_FLOAT_SETTINGS = sorted(n for n, f in settings_fields(Settings) if f.annotation is float)


@pytest.mark.parametrize("value", ["inf", "nan"])
@pytest.mark.parametrize("name", _FLOAT_SETTINGS)
def test_no_float_setting_takes_inf_or_nan(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    """Every float setting (including any added later) refuses inf and nan, naming itself."""
    variable = f"HTAP_SYNC_{name.upper()}"
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        load_settings(env_file=None)


def test_sentinels_are_parsed_and_checked() -> None:
    """Sentinel addresses parse as host:port pairs; a bad one, or no master name, is refused."""
    settings = load_settings(
        {"redis_sentinels": "10.0.0.1:26379, [::1]:26380", "redis_sentinel_master": "m"},
        env_file=None,
    )
    assert settings.redis.sentinel_hosts() == [("10.0.0.1", 26379), ("::1", 26380)]
    assert settings.redis.display == "sentinels 10.0.0.1:26379, [::1]:26380 (master m)"
    for bad in (
        {"redis_sentinels": "host"},
        {"redis_sentinels": "h:0", "redis_sentinel_master": "m"},
    ):
        with pytest.raises(SettingsError, match="HTAP_SYNC_REDIS_SENTINELS"):
            load_settings(bad, env_file=None)


def test_the_redis_password_is_not_displayed() -> None:
    """redis.display shows the Redis URL without its password (user part or query)."""
    settings = load_settings({"redis_url": "redis://app:pw123@cache:6380/2"}, env_file=None)
    assert settings.redis.display == "redis://app:***@cache:6380/2"
    # redis-py also reads a password from the query string: that is never shown either.
    query = load_settings({"redis_url": "redis://cache:6380/2?password=pw123"}, env_file=None)
    assert "pw123" not in query.redis.display


def test_the_nested_spelling_works(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """HTAP_SYNC_<SECTION>__<FIELD> sets the field too, from the environment or .env."""
    monkeypatch.setenv("HTAP_SYNC_REDIS__URL", "redis://nested:6390/3")
    monkeypatch.setenv("HTAP_SYNC_FOLLOWING__ENABLED", "false")
    monkeypatch.setenv("HTAP_SYNC_AUTH__TOKEN", "nested-token")
    env = tmp_path / ".env"
    env.write_text("HTAP_SYNC_INGRESS__MAX_ITEMS=5\nHTAP_SYNC_RATE__BURST=3\n")
    settings = load_settings(env_file=str(env))
    assert str(settings.redis.url) == "redis://nested:6390/3"
    assert settings.following.enabled is False
    assert settings.auth.require_mode() == "token"
    assert (settings.ingress.max_items, settings.rate.burst) == (5, 3)
    by_section = load_settings({"breaker": {"probes": 4}}, env_file=None)
    assert by_section.breaker.probes == 4


def test_a_flat_name_wins_over_the_nested_spelling(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """In one place the documented flat name wins; the environment wins over .env, and an
    override over both, whatever the spelling."""
    monkeypatch.setenv("HTAP_SYNC_RATE__BURST", "3")
    monkeypatch.setenv("HTAP_SYNC_RATE_BURST", "4")
    monkeypatch.setenv("HTAP_SYNC_BREAKER__PROBES", "5")
    env = tmp_path / ".env"
    env.write_text(
        "HTAP_SYNC_BREAKER_PROBES=6\nHTAP_SYNC_FOLLOW=false\nHTAP_SYNC_FOLLOWING__ENABLED=true\n"
    )
    settings = load_settings(env_file=str(env))
    assert (settings.rate.burst, settings.breaker.probes) == (4, 5)
    assert settings.following.enabled is False
    both = {"rate": {"burst": 8}, "rate_burst": 9}
    assert load_settings(both, env_file=str(env)).rate.burst == 9


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"HTAP_SYNC_RATE__LIMIT_PER_S": "inf"}, "HTAP_SYNC_RATE__LIMIT_PER_S"),
        ({"HTAP_SYNC_RATE_LIMIT_PER_S": "inf"}, "HTAP_SYNC_RATE_LIMIT_PER_S"),
        ({"HTAP_SYNC_FOLLOWING__TIMEOUT_S": "soon"}, "HTAP_SYNC_FOLLOWING__TIMEOUT_S"),
        ({"HTAP_SYNC_REDIS__SENTINELS": "h:1"}, "HTAP_SYNC_REDIS__SENTINELS"),
        ({"CLOUD_SDK_AK": "a"}, "CLOUD_SDK_AK"),
        ({"HTAP_SYNC_AK": "a", "CLOUD_SDK_AK": "b"}, "HTAP_SYNC_AK"),
        ({"HTAP_SYNC_CLOUD__ENDPOINT": "http://api.example.com"}, "HTAP_SYNC_CLOUD__ENDPOINT"),
        ({"HTAP_SYNC_REDIS": "{not json"}, "HTAP_SYNC_REDIS"),
    ],
)
def test_an_error_names_the_variable_the_user_set(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], named: str
) -> None:
    """The message leads with the variable as it was spelled: flat, nested, or the SDK's."""
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings(env_file=None)
    assert str(info.value).splitlines()[1].strip().startswith(f"{named}:")


def test_a_nested_error_in_dotenv_names_it(tmp_path: Path) -> None:
    """A bad value in .env is named as written there."""
    env = tmp_path / ".env"
    env.write_text("HTAP_SYNC_DELIVERY__MAX_ATTEMPTS=0\n")
    with pytest.raises(SettingsError, match="HTAP_SYNC_DELIVERY__MAX_ATTEMPTS: "):
        load_settings(env_file=str(env))


def test_replace_changes_some_settings_and_checks_them() -> None:
    """Settings.replace takes flat names, keeps the rest, and refuses a bad value by name."""
    settings = load_settings({"auth_token": "t", "rate_burst": 3}, env_file=None)
    changed = settings.replace(redis_url="redis://other:6379/1", api_auth="off")
    assert (str(changed.redis.url), changed.ingress.auth) == ("redis://other:6379/1", "off")
    assert changed.auth.token == settings.auth.token and changed.rate.burst == 3
    assert str(settings.redis.url) == "redis://127.0.0.1:6379/0"  # the original is unchanged
    with pytest.raises(SettingsError, match="HTAP_SYNC_API_MAX_ITEMS"):
        settings.replace(api_max_items=0)
    with pytest.raises(TypeError, match="redis__url"):
        settings.replace(redis__url="redis://x")


def test_sections_are_frozen() -> None:
    """Like the whole, a section cannot be changed after the settings are built."""
    settings = load_settings(env_file=None)
    with pytest.raises(ValidationError):
        settings.redis.url = settings.redis.url  # type: ignore[misc]


def test_reads_wait_for_replicas_only_where_a_failover_can_promote_one() -> None:
    """With sentinels a status read must be on the in-doubt mark's replicas; a lone Redis
    (no automatic promotion) reads without waiting."""
    lone = load_settings({"redis_url": "redis://127.0.0.1:1/0"}, env_file=None)
    ha = load_settings(
        {
            "redis_sentinels": "127.0.0.1:26379",
            "redis_sentinel_master": "m",
            "redis_wait_replicas": 2,
        },
        env_file=None,
    )
    assert read_replicas(lone) == 0
    assert read_replicas(ha) == 2
