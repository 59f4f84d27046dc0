"""The two ways tickets travel, for guarantee tests that must hold on both."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from htap_sync.producer.api import Producer

# ``single``: one message per ticket (``enqueue``); ``batched``: ``HTAP_SYNC_BATCH_SIZE``
# tickets per message of the batch task (``enqueue_many``).
PATHS = ["single", "batched"]


def submit(producer: Producer, requests: Sequence[Mapping[str, str]], path: str) -> list[str]:
    """Queue the requests one message each (``single``) or in batches (``batched``)."""
    if path == "single":
        return [producer.enqueue(request).ticket for request in requests]
    results = list(producer.enqueue_many(requests))
    assert producer.settings.batch_size > 1 and all(r.status == "queued" for r in results)
    return [r.ticket for r in results if r.ticket is not None]
