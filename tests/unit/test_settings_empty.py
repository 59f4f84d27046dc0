"""One rule for empty values, over the whole settings table: an empty variable, in the
environment or in ``.env``, under any of its spellings, is the same as an unset one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from htap_sync.common.settings import FLAT_NAMES, load_settings
from htap_sync.common.settings_names import env_name, env_names, nested_env_name
from tests.unit.test_settings_names import _SAMPLE, DOCUMENTED, _read, _together

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS = load_settings(env_file=None)


def _spellings(flat: str) -> list[str]:
    """Every variable that sets ``flat``: its documented name, the SDK's, the nested one."""
    return [*env_names(flat), nested_env_name(FLAT_NAMES[flat])]


def test_the_table_is_the_documented_list() -> None:
    """The rule is checked on every documented variable (the list the README's table holds)."""
    assert [env_name(flat) for flat in FLAT_NAMES] == [name for name, *_ in DOCUMENTED]


@pytest.mark.parametrize("flat", list(FLAT_NAMES))
def test_an_empty_variable_is_unset(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, flat: str
) -> None:
    """Each spelling of each setting, set to an empty value in the environment or in .env,
    leaves the setting at its default."""
    path = ".".join(FLAT_NAMES[flat])
    default = _read(DEFAULTS, path)
    dotenv = tmp_path / ".env"
    for name in _spellings(flat):
        monkeypatch.setenv(name, "")
        assert _read(load_settings(env_file=None), path) == default, name
        monkeypatch.delenv(name)
        dotenv.write_text(f"{name}=\n")
        assert _read(load_settings(env_file=str(dotenv)), path) == default, name


@pytest.mark.parametrize(("name", "value", "path", "expected"), DOCUMENTED)
def test_an_empty_variable_lets_the_next_source_speak(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    name: str,
    value: str,
    path: str,
    expected: object,
) -> None:
    """Empty in the environment, set in .env: the .env value holds (empty is not a value that
    hides another). Companions that go together are set in .env too."""
    dotenv = tmp_path / ".env"
    dotenv.write_text("".join(f"{each}={_SAMPLE[each]}\n" for each in _together(name)))
    monkeypatch.setenv(name, "")
    assert _read(load_settings(env_file=str(dotenv)), path) == expected


def test_the_example_dotenv_with_a_key_pair_is_one_auth_mode(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """.env.example copied as is (its empty HTAP_SYNC_AUTH_TOKEN=) plus AK/SK: one mode,
    AK/SK; the example alone configures none (a worker says so), never an empty token."""
    dotenv = tmp_path / ".env"
    shutil.copy(ROOT / ".env.example", dotenv)
    assert "HTAP_SYNC_AUTH_TOKEN=\n" in dotenv.read_text()
    alone = load_settings(env_file=str(dotenv))
    assert alone.auth.token is None and alone.auth.modes == []
    monkeypatch.setenv("HTAP_SYNC_AK", "QTWAOYTTINDUT2QVKYUC")
    monkeypatch.setenv("HTAP_SYNC_SK", "secret")
    assert load_settings(env_file=str(dotenv)).auth.require_mode() == "aksk"
