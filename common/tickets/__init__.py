"""Tickets: one request's record, from submission to its result, and the claims on it.

* :mod:`~htap_sync.common.tickets.ids`: a request's ticket id (its identity).
* :mod:`~htap_sync.common.tickets.store`: the producers' and callers' face (submit, read), on
  Redis; :mod:`~htap_sync.common.tickets.store_memory` its in-memory twin for tests.
* :mod:`~htap_sync.common.tickets.claims`: the workers' face (claim, start, finish, defer):
  the protocol, with :mod:`~htap_sync.common.tickets.claim_types` its values;
  :mod:`~htap_sync.common.tickets.claims_redis` on Redis (the ``.lua`` scripts beside it),
  :mod:`~htap_sync.common.tickets.claims_memory` in memory.
* :mod:`~htap_sync.common.tickets.delayed`: the durable delayed set (retries, watchdogs).
* :mod:`~htap_sync.common.sync_info`: where a created task's sync stands.
"""
