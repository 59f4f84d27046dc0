"""A local, faithful TaurusDB HTAP data-sync endpoint for tests, demos and benchmarks."""

from simulator.app import make_app
from simulator.config import SimulatorConfig
from simulator.server import SimulatorServer, serve
from simulator.state import SimulatorState

__all__ = ["SimulatorConfig", "SimulatorServer", "SimulatorState", "make_app", "serve"]
