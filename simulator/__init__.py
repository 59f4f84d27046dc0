"""A local, faithful TaurusDB HTAP data-sync endpoint for tests, demos and benchmarks."""

from htap_sync.simulator.app import make_app
from htap_sync.simulator.arrivals import max_in_window, observed_rate
from htap_sync.simulator.config import SimulatorConfig
from htap_sync.simulator.ratelimit import RateLimit, RateLimiter
from htap_sync.simulator.server import SimulatorServer, serve
from htap_sync.simulator.state import SimulatorState

__all__ = [
    "RateLimit",
    "RateLimiter",
    "SimulatorConfig",
    "SimulatorServer",
    "SimulatorState",
    "make_app",
    "max_in_window",
    "observed_rate",
    "serve",
]
