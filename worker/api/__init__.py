"""The calls to the TaurusDB API: the client, its answers, signing and tokens.

* :mod:`~htap_sync.worker.api.client`: create, list, look up tasks and jobs (over httpx).
* :mod:`~htap_sync.worker.api.classify`: answers and transport failures into the error tree.
* :mod:`~htap_sync.worker.api.configure_calls`: the calls of a configured creation.
* :mod:`~htap_sync.worker.api.auth`, :mod:`~htap_sync.worker.api.signing`,
  :mod:`~htap_sync.worker.api.iam`: the three ways to authenticate.
* :mod:`~htap_sync.worker.api.aio`: many calls in flight from plain threads (the batch path).
"""
