"""The Celery task: unpack the message, call :func:`process_ticket`, act on its verdict."""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, Task
from celery.signals import worker_process_shutdown, worker_shutdown

from common.celery_app import CREATE_REPLICATION, make_celery
from common.settings import Settings
from worker.process import process_ticket
from worker.runtime import Runtime

log = logging.getLogger("htap_sync.worker")


def make_worker_app(settings: Settings, runtime: Runtime | None = None) -> Celery:
    """The Celery app with the create task registered, for ``celery worker`` to run."""
    app = make_celery(settings)
    runtime = runtime or Runtime(settings)
    settings.require_endpoint  # noqa: B018 - fail at start, not at the first message
    # A countdown message waits unacknowledged in the worker; past the visibility timeout Redis
    # would deliver it again, so waits stay well under it.
    max_countdown_s = settings.visibility_timeout_s / 2

    @app.task(
        name=CREATE_REPLICATION,
        bind=True,
        acks_late=True,
        reject_on_worker_lost=True,
        ignore_result=True,
        max_retries=None,
    )
    def create_replication(self: Task[Any, Any], ticket: str, run: str, request: Any) -> str:
        parts = runtime.get()
        outcome = process_ticket(
            ticket,
            run,
            request,
            client=parts.client,
            store=parts.store,
            settings=settings,
            rng=parts.rng,
        )
        log.info("ticket %s: %s (%s)", ticket, outcome.kind, outcome.reason)
        if outcome.kind == "retry":
            raise self.retry(countdown=min(outcome.delay_s, max_countdown_s), max_retries=None)
        return outcome.kind

    def _close(**_: Any) -> None:
        runtime.close()

    worker_process_shutdown.connect(_close, weak=False)
    worker_shutdown.connect(_close, weak=False)
    return app
