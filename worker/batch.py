"""The batch task: several tickets in one message, their API calls in flight together.

Each ticket of a batch is one :func:`~htap_sync.worker.deliver.deliver`, exactly as the
single task runs it (its own claim, rate token, breaker check, in-doubt mark, reconciliation
and result), in a thread of its own; the threads' HTTP calls all go through the process's
event loop (:mod:`htap_sync.worker.aio`), so they wait on futures, not sockets.

All of a batch's tickets run at once, so a batch lasts about as long as its slowest ticket:
each delivery is bounded as a single one is (``HTAP_SYNC_LEASE``, i.e. 2 x request timeout +
5 s, below the visibility timeout), rate-token waits included, as each ticket waits for its
own token in its own thread.

A redelivered batch (a worker died mid-batch) is safe: a finished ticket's claim answers
``done``, one another delivery holds answers ``busy`` (looked at again once its lease ends),
and one left in doubt is reconciled before any create call.

How a batch ends, for Celery and Flower:

* Redis unreachable for some ticket: the whole message is given back (``Reject``, requeued);
  the tickets already finished are skipped when it returns.
* Some tickets failed (or met a bug, which fails them visibly): the task ends in FAILURE with
  :class:`TicketFailed` naming each (the others' results are in the ticket store as usual).
* Otherwise: SUCCESS, with the count of each outcome, e.g. ``finished 15, skipped 1``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from celery.exceptions import Reject

from htap_sync.common.settings import Settings
from htap_sync.worker.deliver import TicketFailed, deliver
from htap_sync.worker.runtime import Runtime

log = logging.getLogger("htap_sync.worker")

Item = tuple[str, str, Any]


def parse_items(raw: Any) -> tuple[list[Item], list[str]]:
    """The ``[ticket, run, request]`` items of a batch message, and why any was refused.

    The message is untrusted input: an item that does not name its ticket and run as text
    cannot be acted on (nor failed) and is only reported; the request itself is validated
    by :func:`process_ticket`, which fails its ticket when it is bad.
    """
    if not isinstance(raw, list):
        return [], [f"items: expected a list, got {type(raw).__name__}"]
    items: list[Item] = []
    refused: list[str] = []
    for index, item in enumerate(raw):
        shaped = isinstance(item, list | tuple) and len(item) == 3
        if not shaped or not all(isinstance(part, str) and part for part in item[:2]):
            refused.append(f"items[{index}]: expected [ticket, run, request]")
            continue
        items.append((item[0], item[1], item[2]))
    return items, refused


def run_batch(settings: Settings, runtime: Runtime, raw: Any) -> str:
    """Deliver every ticket of a batch concurrently; end as the module docstring says."""
    items, refused = parse_items(raw)
    for why in refused:
        log.error("batch item refused: %s", why)
    if not items:
        raise TicketFailed("; ".join(refused) or "items: empty batch")
    client = runtime.get().batch_client

    def one(item: Item) -> tuple[str, str | None]:
        """The item's outcome kind (``rejected`` when Redis failed it) and its failure."""
        ticket, run, request = item
        try:
            return deliver(ticket, run, request, client, settings=settings, runtime=runtime), None
        except Reject:
            return "rejected", None
        except TicketFailed as exc:
            return "finished", str(exc)
        except Exception as exc:  # deliver() logged it and failed the ticket
            return "finished", f"{ticket}: HTAP_SYNC.INTERNAL {type(exc).__name__}"

    with ThreadPoolExecutor(len(items), thread_name_prefix="htap-sync-batch") as pool:
        ends = list(pool.map(one, items))
    kinds = Counter(kind for kind, _ in ends)
    failed = [failure for _, failure in ends if failure is not None]
    if kinds["rejected"]:
        raise Reject(f"{kinds['rejected']} tickets met Redis errors", requeue=True)
    if failed or refused:
        count = len(failed) + len(refused)
        raise TicketFailed(f"{count} of {len(raw)} failed: " + "; ".join(refused + failed))
    return ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))


def batch_task(settings: Settings, runtime: Runtime) -> Callable[[Any], str]:
    """The body of the batch task (``htap_sync.create_replications``)."""

    def create_replications(items: Any) -> str:
        return run_batch(settings, runtime, items)

    create_replications.__name__ = "create_replications"
    return create_replications
