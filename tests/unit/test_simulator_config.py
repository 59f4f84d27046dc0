"""Tests of the simulator's configuration and CLI (no network)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from htap_sync.simulator import SimulatorConfig
from htap_sync.simulator.cli import main, parse
from htap_sync.simulator.config import FAULT_RATE_FIELDS
from tests.unit.sim_app import CLI_PACE, INSTANCE, OTHER_INSTANCE

# --- config -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"latency_ms": -1}, "latency_ms"),
        ({"latency_ms": 1.5}, "latency_ms"),
        ({"latency_ms": True}, "latency_ms"),
        ({"fail_rate": -0.1}, "fail_rate"),
        ({"fail_rate": 1.01}, "fail_rate"),
        ({"fail_rate": float("nan")}, "fail_rate"),
        ({"fail_rate": "0.5"}, "fail_rate"),
        *(({name: 1.5}, name) for name in FAULT_RATE_FIELDS),
        ({"fail_rate": 0.5, "in_progress_rate": 0.6}, "fail_rate+in_progress_rate"),
        ({"hang_ms": -1}, "hang_ms"),
        ({"hang_ms": 0.5}, "hang_ms"),
        ({"retry_after_s": -1}, "retry_after_s"),
        ({"retry_after_s": 2.5}, "retry_after_s"),
        ({"retry_after_s": True}, "retry_after_s"),
        ({"seed": "1"}, "seed"),
        ({"token": ""}, "token"),
        ({"ak": "AK"}, "ak/sk"),
        ({"sk": "SK"}, "ak/sk"),
        ({"unknown_instances": INSTANCE}, "unknown_instances"),
        ({"unknown_instances": [1]}, "unknown_instances"),
    ],
)
def test_config_rejects_out_of_range_values(kwargs: dict[str, Any], field: str) -> None:
    """A bad setting raises ValueError whose message starts with the field's name."""
    with pytest.raises(ValueError, match=rf"^{re.escape(field)}:"):
        SimulatorConfig(**kwargs)


def test_config_hides_secrets_and_freezes_instances() -> None:
    """repr() omits token and sk; a list of unknown instances becomes a frozenset."""
    config = SimulatorConfig(
        token="tok-secret",
        ak="AK",
        sk="sk-secret",
        unknown_instances=[INSTANCE],  # type: ignore[arg-type]
    )
    assert "tok-secret" not in repr(config) and "sk-secret" not in repr(config)
    assert config.unknown_instances == frozenset({INSTANCE})
    assert config.fault_rates() == dict.fromkeys(FAULT_RATE_FIELDS, 0.0)


# --- CLI ----------------------------------------------------------------------------------


EVERY_FAULT_OPTION = [
    *("--host", "127.0.0.1", "--port", "9000", "--token", "t", "--ak", "A", "--sk", "S"),
    *("--unknown-instance", INSTANCE, "--unknown-instance", OTHER_INSTANCE),
    *("--latency-ms", "5", "--fail-rate", "0.25", "--created-then-500-rate", "0.1"),
    *("--drop-after-create-rate", "0.05", "--hang-rate", "0.04"),
    *("--hang-after-create-rate", "0.03", "--throttle-rate", "0.2"),
    *("--in-progress-rate", "0.02", "--hang-ms", "1500", "--retry-after-s", "12", "--seed", "3"),
]


def test_cli_arguments_build_the_config() -> None:
    """Every CLI option lands in the SimulatorConfig."""
    args = parse(EVERY_FAULT_OPTION)
    assert (args.host, args.port) == ("127.0.0.1", 9000)
    assert args.config == SimulatorConfig(
        token="t",
        ak="A",
        sk="S",
        unknown_instances=frozenset({INSTANCE, OTHER_INSTANCE}),
        latency_ms=5,
        fail_rate=0.25,
        created_then_500_rate=0.1,
        drop_after_create_rate=0.05,
        hang_rate=0.04,
        hang_after_create_rate=0.03,
        hang_ms=1500,
        throttle_rate=0.2,
        retry_after_s=12,
        in_progress_rate=0.02,
        seed=3,
        **CLI_PACE,
    )


def test_cli_defaults_and_retry_after_none() -> None:
    """No options: no faults and the standalone pace; --retry-after-s none omits the header."""
    assert parse([]).config == SimulatorConfig(**CLI_PACE)
    args = parse(["--retry-after-s", "none"])
    assert args.config.retry_after_s is None


def test_cli_rejects_invalid_config(capsys: pytest.CaptureFixture[str]) -> None:
    """An out-of-range option exits with status 2 and names the field, without serving."""
    with pytest.raises(SystemExit) as exited:
        main(["--fail-rate", "2"])
    assert exited.value.code == 2
    assert "fail_rate" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--throttle-rate", "0.6", "--hang-rate", "0.5"], "hang_rate+throttle_rate:"),
        (["--hang-ms", "-1"], "hang_ms:"),
        (["--retry-after-s", "soon"], "--retry-after-s"),
    ],
)
def test_cli_rejects_invalid_fault_options(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fault options that break a config rule exit with status 2 and say which."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
