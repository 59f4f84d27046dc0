"""Prometheus metrics of a worker: what it asked the API, how it waited, how long tickets took.

Metrics live in this module's registry. Under the threads pool (the default) one process does
all the work and serves them. Under prefork, :func:`prepare_multiprocess` must run before the
pool forks: each child then writes its values to files in a directory, and the parent serves
their sum (prometheus_client's multiprocess mode). Gauges of shared state (queue depth,
effective rate, breaker) are read from Redis at scrape time by :class:`FleetCollector`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
RESULT_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 86400)

API_CALLS = Counter(
    "htap_sync_api_calls_total",
    "Calls to the TaurusDB API by API, outcome and HTTP status ('none' when no answer).",
    ["api", "outcome", "status"],
)
API_LATENCY = Histogram(
    "htap_sync_api_latency_seconds", "Duration of API calls.", ["api"], buckets=LATENCY_BUCKETS
)
RETRIES = Counter("htap_sync_retries_total", "Attempts that will be retried, by error.", ["error"])
RECONCILIATIONS = Counter(
    "htap_sync_reconciliations_total",
    "Looks through the list call after an ambiguous attempt, by result.",
    ["result"],
)
WAITS = Counter(
    "htap_sync_waits_total", "Deliveries that waited without an attempt, by reason.", ["reason"]
)
FOLLOWED = Counter(
    "htap_sync_followed_total",
    "Created tasks followed to their end, by final sync state (syncing, failed, unknown).",
    ["state"],
)
RESULTS = Histogram(
    "htap_sync_enqueue_to_result_seconds",
    "From submission to a finished ticket, by final state.",
    ["state"],
    buckets=RESULT_BUCKETS,
)


class FleetCollector(Collector):
    """Gauges read from Redis when scraped: queue depth, waits, effective rate, breakers."""

    def __init__(self, view: Callable[[], dict[str, Any]]) -> None:
        self._view = view

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One sample per gauge, from a fresh read of the fleet's state."""
        try:
            view = self._view()
        except Exception:  # a scrape must not fail because Redis blinked
            return
        depth = GaugeMetricFamily("htap_sync_queue_depth", "Messages waiting in the queue.")
        depth.add_metric([], view["queue"]["depth"])
        yield depth
        delayed = GaugeMetricFamily("htap_sync_delayed_depth", "Tickets waiting to be retried.")
        delayed.add_metric([], view["delayed"]["depth"])
        yield delayed
        rate = GaugeMetricFamily(
            "htap_sync_effective_rate_per_second",
            "The fleet's effective call rate per endpoint, project and API.",
            labels=["endpoint", "project_id", "api"],
        )
        for r in view["rate_limits"]:
            rate.add_metric([r["endpoint"], r["project_id"], r["api"]], r["effective_per_s"])
        yield rate
        breaker = GaugeMetricFamily(
            "htap_sync_breaker_open",
            "1 while the endpoint's circuit breaker is open.",
            labels=["endpoint"],
        )
        for b in view["breakers"]:
            breaker.add_metric([b["endpoint"]], 1.0 if b["state"] == "open" else 0.0)
        yield breaker


def serve_metrics(port: int, fleet: Collector) -> None:
    """Serve ``/metrics`` on ``port`` from a background thread."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    registry.register(fleet)
    start_http_server(port, addr="0.0.0.0", registry=registry)  # noqa: S104 - scraped by Prometheus
