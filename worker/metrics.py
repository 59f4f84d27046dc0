"""Prometheus metrics of a worker: what it asked the API, how it waited, how long tickets took.

Metrics live in this module's registry. Under the threads pool (the default) one process does
all the work and serves them. Under prefork, ``PROMETHEUS_MULTIPROC_DIR`` is set before anything
imports prometheus_client (:func:`htap_sync.worker.main.run_worker`): each child then writes its
values to files in that directory, and the parent serves their sum (multiprocess mode).

The fleet's gauges (queue depth, rates, breakers) describe shared state read from Redis, the
same whichever worker reads it: summed over replicas they would count it once per replica. So
one worker at a time exports them, the holder of a short lease in Redis (:class:`ExporterLease`);
another takes over within ``ttl_s`` when it goes away.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from typing import Any, cast

import redis
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from htap_sync.common.lanes import tenant_label
from htap_sync.common.scripts import script

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
RESULT_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 86400)
WAIT_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)
BREAKER_STATES = ("closed", "open", "half_open")

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
WAIT_SECONDS = Histogram(
    "htap_sync_wait_seconds",
    "How long a delivery put its ticket off without an attempt (rate, breaker, replication).",
    ["reason"],
    buckets=WAIT_BUCKETS,
)
DELIVERIES = Counter(
    "htap_sync_deliveries_total",
    "Deliveries of create messages by what became of them (finished, retry, waiting, skipped).",
    ["kind"],
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

# The fleet's gauges: (name, kind, help, labels). The collector builds its families from
# these, and the README's table lists them, so neither can drift from what is exported.
FLEET: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("htap_sync_queue_depth", "gauge", "Messages waiting in the queue.", ()),
    ("htap_sync_delayed_depth", "gauge", "Tickets waiting to be retried.", ()),
    ("htap_sync_failed_tickets", "gauge", "Failed tickets still readable (re-drivable).", ()),
    (
        "htap_sync_configured_rate_per_second",
        "gauge",
        "The configured call rate per endpoint, project and API (HTAP_SYNC_RATE_LIMIT_PER_S).",
        ("endpoint", "project_id", "api"),
    ),
    (
        "htap_sync_effective_rate_per_second",
        "gauge",
        "The fleet's effective call rate per endpoint, project and API (lowered by 429s).",
        ("endpoint", "project_id", "api"),
    ),
    (
        "htap_sync_rate_blocked_seconds",
        "gauge",
        "How much longer a Retry-After holds the bucket shut.",
        ("endpoint", "project_id", "api"),
    ),
    (
        "htap_sync_lane_queue_depth",
        "gauge",
        "Messages waiting in each lane's queue; bulk's include the tenants' queues.",
        ("lane",),
    ),
    (
        "htap_sync_tenant_waiting_messages",
        "gauge",
        "Bulk messages waiting in tenants' queues, by tenant (named in HTAP_SYNC_TENANT_WEIGHTS,"
        " else other).",
        ("tenant",),
    ),
    (
        "htap_sync_lane_share",
        "gauge",
        "Each lane's share of the create tokens lately (decaying over 10 s), per project.",
        ("project_id", "lane"),
    ),
    (
        "htap_sync_breaker_state",
        "gauge",
        "1 for the endpoint's circuit breaker state (closed, open, half_open), else 0.",
        ("endpoint", "state"),
    ),
    (
        "htap_sync_breaker_opened",
        "counter",
        "How many times the endpoint's breaker opened.",
        ("endpoint",),
    ),
)


def observe_delivery(kind: str, reason: str, delay_s: float) -> None:
    """Count one delivery's outcome; time its wait when it put its ticket off (seconds)."""
    DELIVERIES.labels(kind).inc()
    if kind == "waiting":
        WAIT_SECONDS.labels(reason).observe(max(0.0, delay_s))


# Take the lease when it is free or already ours, and extend it; atomically.
class ExporterLease:
    """Which worker exports the fleet's gauges: the holder of one Redis key, for ``ttl_s``.

    Each scrape of the holder extends it; when the holder stops being scraped (it died), the
    next worker scraped after ``ttl_s`` takes over.
    """

    def __init__(self, client: redis.Redis, key_prefix: str, *, ttl_s: int = 60) -> None:
        self.key = f"{key_prefix}:metrics:exporter"
        self.identity = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._ttl_s = ttl_s
        self._script = script(client, __name__, "exporter_lease.lua")

    def held(self) -> bool:
        """True when this process exports the fleet's gauges (taking the lease if free)."""
        return bool(self._script(keys=[self.key], args=[self.identity, self._ttl_s]))


class FleetCollector(Collector):
    """The fleet's gauges, read from Redis when scraped, by the lease holder only.

    Args:
        view: reads the fleet's state (:func:`htap_sync.worker.fleet.fleet_view`).
        redis_client: where the exporter lease lives; None exports on every scrape (one
            process serving alone, tests).
        key_prefix: the deployment's key prefix, under which the lease lives.
    """

    def __init__(
        self,
        view: Callable[[], dict[str, Any]],
        *,
        redis_client: redis.Redis | None = None,
        key_prefix: str = "htap-sync",
    ) -> None:
        self._view = view
        self._lease = ExporterLease(redis_client, key_prefix) if redis_client else None

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        """One sample per gauge, from a fresh read of the fleet's state."""
        try:
            if self._lease is not None and not self._lease.held():
                return
            view = self._view()
        except Exception:  # a scrape must not fail because Redis blinked
            return
        yield from fleet_families(view)


def _family(name: str) -> GaugeMetricFamily | CounterMetricFamily:
    ((kind, doc, labels),) = [(k, d, lab) for n, k, d, lab in FLEET if n == name]
    if kind == "counter":
        return CounterMetricFamily(name, doc, labels=labels)
    return GaugeMetricFamily(name, doc, labels=labels)


def _lane_metrics(families: dict[str, Any], lanes: Any) -> None:
    """The lanes' gauges; tenants not named in the weights are summed as ``other`` (a label
    must have few values)."""
    if not lanes:
        return
    waiting: dict[str, int] = {}
    for tenant, count in lanes["tenants_waiting"].items():
        label = tenant_label(lanes["tenants_named"], tenant)
        waiting[label] = waiting.get(label, 0) + count
    queues = lanes["queues"]
    depth = families["htap_sync_lane_queue_depth"]
    depth.add_metric(["interactive"], queues["interactive"])
    depth.add_metric(["bulk"], queues["bulk"] + sum(waiting.values()))
    for tenant, count in sorted(waiting.items()):
        families["htap_sync_tenant_waiting_messages"].add_metric([tenant], count)


def fleet_families(view: dict[str, Any]) -> list[GaugeMetricFamily | CounterMetricFamily]:
    """The fleet gauges of one view of the fleet, in :data:`FLEET`'s order.

    A breaker still marked open after its cool-down reads as half open: the next call is a
    probe (the stored state changes only when that call is let through).
    """
    families = {name: _family(name) for name, *_ in FLEET}
    families["htap_sync_queue_depth"].add_metric([], view["queue"]["depth"])
    families["htap_sync_delayed_depth"].add_metric([], view["delayed"]["depth"])
    families["htap_sync_failed_tickets"].add_metric([], view["failed"])
    for r in view["rate_limits"]:
        labels = [r["endpoint"], r["project_id"], r["api"]]
        families["htap_sync_configured_rate_per_second"].add_metric(labels, r["configured_per_s"])
        families["htap_sync_effective_rate_per_second"].add_metric(labels, r["effective_per_s"])
        families["htap_sync_rate_blocked_seconds"].add_metric(labels, r["blocked_for_s"])
        shares = r.get("lane_shares") or {}
        for lane in ("interactive", "bulk"):
            if r["api"] == "create" and shares.get(lane) is not None:
                share = families["htap_sync_lane_share"]
                share.add_metric([r["project_id"], lane], shares[lane])
    _lane_metrics(families, view.get("lanes"))
    for b in view["breakers"]:
        state = b["state"]
        if state == "open" and b["open_for_s"] <= 0:
            state = "half_open"
        for each in BREAKER_STATES:
            families["htap_sync_breaker_state"].add_metric(
                [b["endpoint"], each], 1.0 if each == state else 0.0
            )
        families["htap_sync_breaker_opened"].add_metric([b["endpoint"]], b["opened"])
    return list(families.values())


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


def worker_metrics() -> list[tuple[str, str, str, tuple[str, ...]]]:
    """Every metric a worker may export: (name, kind, help, labels), for documentation."""
    found = []
    for metric in (
        API_CALLS,
        API_LATENCY,
        RETRIES,
        RECONCILIATIONS,
        WAITS,
        WAIT_SECONDS,
        DELIVERIES,
        FOLLOWED,
        RESULTS,
    ):
        (family,) = metric.describe()
        # prometheus_client has no public accessor for a metric's label names.
        labels = tuple(cast(tuple[str, ...], metric._labelnames))
        found.append((family.name, family.type, family.documentation, labels))
    return [*found, *FLEET]
