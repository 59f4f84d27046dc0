"""Shared test set-up: every test starts from a clean environment (no HTAP_SYNC_* leaks in)."""

from __future__ import annotations

import os

import pytest

VALID: dict[str, str] = {
    "project_id": "0123456789abcdef0123456789abcdef",
    "instance_id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0in17",
    "source_instance_id": "1a2b3c4d5e6f708192a3b4c5d6e7f809in07",
    "source_database": "src_db",
    "target_database": "tgt_db",
    "task_name": "task_orders_001",
}


def request_data(**changes: str) -> dict[str, str]:
    """A valid request, with some fields changed."""
    return {**VALID, **changes}


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove the developer's HTAP_SYNC_* and SDK variables for the duration of a test."""
    for name in list(os.environ):
        if name.startswith("HTAP_SYNC_") and name != "HTAP_SYNC_TEST_REDIS_URL":
            monkeypatch.delenv(name)
        if name in {"CLOUD_SDK_AK", "CLOUD_SDK_SK"}:
            monkeypatch.delenv(name)


@pytest.hookimpl(trylast=True)  # after -m has deselected
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A run of timing-bound tests only, on xdist workers: balanced (:func:`balance_serial`)."""
    nodes = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if items and all(item.get_closest_marker("serial") for item in items):
        items[:] = balance_serial(items, nodes)


SERIAL_SECONDS = 10.0  # a timing-bound test's usual length, unless its marker says


def balance_serial(items: list[pytest.Item], nodes: int) -> list[pytest.Item]:
    """When only timing-bound tests run, on ``nodes`` xdist workers: order them so that the
    slices xdist's work-stealing scheduler hands out first (contiguous, their sizes as it cuts
    them) carry about equal seconds, each longest first; stealing then takes the short ones
    at the tails. Seconds come from ``@pytest.mark.serial(seconds=...)``. Without this the
    collection's order put the longest tests behind one another on one worker."""
    if nodes < 2 or not items:
        return items
    sizes = first_slice_sizes(len(items), nodes)
    hands: list[list[pytest.Item]] = [[] for _ in range(nodes)]
    loads = [0.0] * nodes
    for seconds, item in sorted(
        ((serial_seconds(i), i) for i in items), key=lambda pair: pair[0], reverse=True
    ):
        least = min((h for h in range(nodes) if len(hands[h]) < sizes[h]), key=lambda h: loads[h])
        hands[least].append(item)
        loads[least] += seconds
    return [item for hand in hands for item in hand]


def first_slice_sizes(count: int, nodes: int) -> list[int]:
    """How xdist's work-stealing scheduler cuts ``count`` tests among ``nodes`` idle workers
    at the start: each, in turn, the pending tests over the workers left."""
    sizes, left = [], count
    for i in range(nodes):
        sizes.append(left // (nodes - i))
        left -= sizes[-1]
    return sizes


def serial_seconds(item: pytest.Item) -> float:
    """How long a timing-bound test usually runs (its marker's ``seconds``)."""
    marker = item.get_closest_marker("serial")
    return float(marker.kwargs.get("seconds", SERIAL_SECONDS)) if marker else 0.0
