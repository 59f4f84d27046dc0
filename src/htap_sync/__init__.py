"""taurus-htap-sync: create TaurusDB HTAP -> StarRocks data-sync tasks at scale.

The public Python API::

    from htap_sync import Producer, errors, load_settings

    producer = Producer(load_settings())
    receipt = producer.enqueue({...})          # errors.RequestInvalid, errors.TicketConflict
    status = producer.wait([receipt.ticket], timeout_s=600)[receipt.ticket]

The product's parts live below this package: ``htap_sync.common`` (what both sides agree on),
``htap_sync.producer`` (validate, enqueue, poll), ``htap_sync.worker`` (the Celery task and the
API client), ``htap_sync.simulator`` (a local TaurusDB endpoint), ``htap_sync.cli`` (the
``htap-sync`` command) and ``htap_sync.devstack`` (throwaway local processes).
"""

from htap_sync.common import errors
from htap_sync.common.settings import Settings, load_settings
from htap_sync.producer.api import Producer, Receipt

__all__ = ["Producer", "Receipt", "Settings", "errors", "load_settings"]
