"""The Celery tasks: unpack a message, deliver its ticket(s) through :func:`process_ticket`
(:mod:`htap_sync.worker.verdicts`), one ticket or a batch
(:mod:`htap_sync.worker.batch`). What runs beside them (signals, threads, the restart) is
:mod:`htap_sync.worker.lifecycle`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import Celery

from htap_sync.common.celery_app import CREATE_REPLICATION, CREATE_REPLICATIONS, make_celery
from htap_sync.common.settings import Settings
from htap_sync.worker.batch import batch_task
from htap_sync.worker.lifecycle import connect_signals
from htap_sync.worker.runtime import Runtime
from htap_sync.worker.verdicts import TicketFailed, deliver


def make_worker_app(
    settings: Settings,
    runtime: Runtime | None = None,
    *,
    loglevel: str = "INFO",
    concurrency: int = 8,
) -> Celery:
    """The Celery app with the create tasks (single and batch) registered, for ``celery
    worker`` to run.

    Raises:
        SettingsError: no endpoint, or not exactly one way to authenticate.
    """
    # Fail at start, not at the first message.
    settings.cloud.require_endpoint  # noqa: B018
    settings.auth.require_mode()
    app = make_celery(settings)
    runtime = runtime or Runtime(settings, concurrency=concurrency)
    app.task(
        name=CREATE_REPLICATION,
        acks_late=True,
        reject_on_worker_lost=True,
        ignore_result=True,
        throws=(TicketFailed,),  # an expected end: logged in one line, no traceback
    )(_create_task(settings, runtime))
    app.task(
        name=CREATE_REPLICATIONS,
        acks_late=True,
        reject_on_worker_lost=True,
        ignore_result=True,
        throws=(TicketFailed,),
    )(batch_task(settings, runtime))
    connect_signals(app, settings, runtime, loglevel)
    return app


def _create_task(settings: Settings, runtime: Runtime) -> Callable[[str, str, Any], str]:
    """The body of the create task: one delivery through :func:`deliver`."""

    def create_replication(ticket: str, run: str, request: Any) -> str:
        return deliver(ticket, run, request, runtime.get(), settings=settings, runtime=runtime)

    create_replication.__name__ = "create_replication"
    return create_replication
