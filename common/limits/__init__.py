"""Limits on the calls the fleet makes, shared by every worker through Redis.

* :mod:`~htap_sync.common.limits.gate`: what a delivery asks before each call (both below);
  its answer and the checks a store runs for it in :mod:`~htap_sync.common.limits.admission`.
* :mod:`~htap_sync.common.limits.bucket`: the token bucket of one API (``bucket.lua``).
* :mod:`~htap_sync.common.limits.breaker`: the circuit breaker of one endpoint
  (``breaker.lua``).
* :mod:`~htap_sync.common.limits.memory_state`: their in-memory store, for tests.
"""
