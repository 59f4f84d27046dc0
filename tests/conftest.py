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
