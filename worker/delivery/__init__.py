"""One delivery: a ticket's way from its message to its result.

Read :mod:`~htap_sync.worker.delivery.ticket` first: :func:`process_ticket` walks the path
top-down. Beside it:

* :mod:`~htap_sync.worker.delivery.start`: the first steps (check the message, claim, gate,
  the in-doubt mark) and the collaborators a delivery holds.
* :mod:`~htap_sync.worker.delivery.recovery`: when an answer leaves doubt or a refusal may be
  our own task's: the list looks first, a retry or a failure only after.
* :mod:`~htap_sync.worker.delivery.record`: recording the tasks the create calls made.
* :mod:`~htap_sync.worker.delivery.settle`: what a delivery reports, and how each call is noted.
* :mod:`~htap_sync.worker.delivery.backoff`: how long until the next attempt.
* :mod:`~htap_sync.worker.delivery.together`: a batch's tickets, their common path taken
  together.
* :mod:`~htap_sync.worker.delivery.configured`: a request with a selection, in two phases.
* :mod:`~htap_sync.worker.verdicts`: what the Celery task does with the end.
"""
