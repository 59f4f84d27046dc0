"""The producer side: validate requests, enqueue them, and answer callers who poll."""

from htap_sync.producer.api import Producer, Receipt

__all__ = ["Producer", "Receipt"]
