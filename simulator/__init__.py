"""A local, faithful TaurusDB HTAP data-sync endpoint for tests, demos and benchmarks."""

from simulator.app import make_app
from simulator.arrivals import max_in_window, observed_rate
from simulator.config import SimulatorConfig
from simulator.ratelimit import RateLimit, RateLimiter
from simulator.server import SimulatorServer, serve
from simulator.state import SimulatorState

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
