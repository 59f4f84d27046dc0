"""The Celery app factory and the task names producers and workers share."""

from __future__ import annotations

from celery import Celery

from htap_sync.common.broker import use_fixed_transports
from htap_sync.common.connections import broker_options
from htap_sync.common.keys import Keys
from htap_sync.common.lanes import queue_name
from htap_sync.common.settings import Settings

# Producers send by this name; they never import the worker's code.
CREATE_REPLICATION = "htap_sync.create_replication"
# Bulk work: one message carries up to HTAP_SYNC_BATCH_SIZE tickets, as [[ticket, run, request]].
CREATE_REPLICATIONS = "htap_sync.create_replications"


def make_celery(settings: Settings) -> Celery:
    """A Celery app on the configured Redis, JSON only, acknowledging late.

    Results do not go through Celery's result backend: the ticket store is the result record
    callers poll (it knows ``queued`` and ``retrying``, which Celery's backend does not).
    """
    broker, sentinel_options = broker_options(settings)
    use_fixed_transports()
    app = Celery("htap_sync", broker=broker, set_as_current=False)
    app.conf.update(
        # Untrusted input: JSON in, JSON out, no other serializer accepted.
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        result_accept_content=["json"],
        task_ignore_result=True,
        # Nothing lost: a message is acknowledged after its task ran, and given back to the
        # queue when the worker process dies under it.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={
            "visibility_timeout": settings.delivery.visibility_timeout_s,
            # kombu looks for expired unacked messages every interval x throttle seconds
            # (100 s by default); look often enough that a dead worker's messages return
            # soon after the visibility timeout.
            "unacked_restore_interval": max(
                1.0, min(10.0, settings.delivery.visibility_timeout_s / 4)
            ),
            "unacked_restore_throttle": 1,
            # The restore holds a mutex key; if Redis dies mid-restore the key survives in the
            # AOF and, at kombu's default of 300 s, blocks every restore after the restart.
            "unacked_mutex_expire": max(5, settings.delivery.visibility_timeout_s // 4),
            # Every broker key under the deployment's prefix, like the ticket store's.
            "global_keyprefix": Keys(settings.key_prefix).broker_prefix,
            # A worker consumes the lanes' queues in a fixed order (common/lanes.py): one
            # BRPOP over [interactive, bulk] takes an interactive message whenever one waits
            # (kombu's default, round_robin, would alternate between them).
            "queue_order_strategy": "priority",
            **sentinel_options,
        },
        broker_connection_retry_on_startup=True,
        task_default_queue=settings.queue,
        # Senders name each message's queue: its lane's (common/lanes.py).
        task_routes={
            CREATE_REPLICATION: {"queue": settings.queue},
            CREATE_REPLICATIONS: {"queue": queue_name(settings, "bulk")},
        },
        worker_hijack_root_logger=False,
        # Task events are off unless asked for: with them on, a worker was seen to hang for good
        # after Redis restarted (celery/kombu 5.7). Flower turns them on remotely when it runs.
        worker_send_task_events=settings.observability.task_events,
        enable_utc=True,
    )
    return app
