"""The batch task: several tickets in one message, their API calls in flight together.

Each ticket of a batch is delivered as the single task delivers one (its own claim, rate
token, breaker check, in-doubt mark, reconciliation and result: the same functions), by
:func:`~htap_sync.worker.delivery.together.process_batch`, which takes the common path for all of
them at once: one store step to start them, their create calls in flight together on the
process's event loop (:mod:`htap_sync.worker.api.aio`), one store step to record the tasks made.
A ticket off that path goes on alone in a thread of its own.

A batch lasts about as long as its slowest ticket: each delivery is bounded as a single one
is (``HTAP_SYNC_LEASE``, i.e. 2 x request timeout + 5 s, below the visibility timeout).

A redelivered batch (a worker died mid-batch) is safe: a finished ticket's claim answers
``done``, one another delivery holds answers ``busy`` (looked at again once its lease ends),
and one left in doubt is reconciled before any create call.

How a batch ends, for Celery and Flower:

* Redis unreachable for some ticket (or for a step of the whole batch): the whole message is
  given back (``Reject``, requeued); the tickets already finished are skipped when it returns.
* Some tickets failed (or met a bug, which fails them visibly): the task ends in FAILURE with
  :class:`TicketFailed` naming each (the others' results are in the ticket store as usual).
* Otherwise: SUCCESS, with the count of each outcome, e.g. ``finished 15, skipped 1``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

from celery.exceptions import Reject

from htap_sync.common.settings import Settings
from htap_sync.worker.delivery.together import End, Item, process_batch
from htap_sync.worker.runtime import Runtime
from htap_sync.worker.verdicts import TicketFailed, settle

log = logging.getLogger("htap_sync.worker")


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
    """Deliver every ticket of a batch (:func:`process_batch`); end as the module docstring
    says."""
    items, refused = parse_items(raw)
    for why in refused:
        log.error("batch item refused: %s", why)
    if not items:
        raise TicketFailed("; ".join(refused) or "items: empty batch")
    parts = runtime.get()
    d = parts.delivery(settings, batch=True)
    try:
        ends = process_batch(items, d)
    except Exception as exc:  # a step for the whole batch: each ticket ends with it
        ends = [exc] * len(items)

    def one(item: Item, end: End) -> tuple[str, str | None]:
        """The item's outcome kind (``rejected`` when Redis failed it) and its failure."""
        ticket, run, _ = item
        try:
            return settle(ticket, run, end, parts=parts, runtime=runtime), None
        except Reject:
            return "rejected", None
        except TicketFailed as exc:
            return "finished", str(exc)
        except Exception as exc:  # settle() logged it and failed the ticket
            return "finished", f"{ticket}: HTAP_SYNC.INTERNAL {type(exc).__name__}"

    settled = [one(item, end) for item, end in zip(items, ends, strict=True)]
    kinds = Counter(kind for kind, _ in settled)
    failed = [failure for _, failure in settled if failure is not None]
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
