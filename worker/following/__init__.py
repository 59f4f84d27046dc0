"""Following created tasks until they sync (or fail), one round per instance across the fleet.

* :mod:`~htap_sync.worker.following.follower`: the thread that runs the rounds.
* :mod:`~htap_sync.worker.following.judge`: where a task stands, from one round's facts.
* :mod:`~htap_sync.worker.following.store`: what is followed, claims and schedule (Redis, with
  the ``.lua`` scripts beside it).
"""
