"""The producer side: validate requests, enqueue them, and answer callers who poll."""

from producer.api import Producer, Receipt

__all__ = ["Producer", "Receipt"]
