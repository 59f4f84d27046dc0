"""The simulator the loopback tests drive: AK/SK signatures required, one unknown instance."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from htap_sync.simulator import SimulatorConfig, SimulatorServer
from tests.integration.simulator_sdk.sdk_rig import AK, MISSING_INSTANCE, SK


@pytest.fixture
def server() -> Iterator[SimulatorServer]:
    """A simulator requiring AK/SK signatures, with one unknown instance."""
    config = SimulatorConfig(ak=AK, sk=SK, unknown_instances=frozenset({MISSING_INSTANCE}))
    with SimulatorServer(config) as running:
        yield running
