"""One ingress served by uvicorn for ``bench.ingress``: ``python -m bench.ingress_app KIND PORT``.

``ours`` is the product's ingress (``make_ingress``); ``bare`` is the reference: a bare
Starlette app whose one route does the same Redis work as the ingress's POST of one request
(``Producer.enqueue``, then ``Producer.status`` of its ticket) with none of the rest (no key,
no body limit, no request id, no metrics, no schema). Both read their settings from the
``HTAP_SYNC_*`` variables, log at WARNING and serve on 127.0.0.1 until SIGTERM.
"""

from __future__ import annotations

import logging
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from htap_sync.common.settings import load_settings
from htap_sync.producer.api import Producer
from htap_sync.producer.ingress import make_ingress


def bare_app(producer: Producer) -> Starlette:
    """The reference: POST /v1/replications, one request, the ingress's Redis work only."""

    async def create(request: Request) -> Response:
        data = await request.json()
        receipt = await run_in_threadpool(producer.enqueue, data)
        status = await run_in_threadpool(producer.status, receipt.ticket, ride_out_s=0)
        return JSONResponse({"outcome": receipt.outcome.value, **status.to_json()}, 202)

    return Starlette(routes=[Route("/v1/replications", create, methods=["POST"])])


def main(argv: list[str]) -> int:
    """Serve ``ours`` or ``bare`` on ``127.0.0.1:PORT`` until stopped."""
    kind, port = argv[0], int(argv[1])
    settings = load_settings(env_file=None)
    producer = Producer(settings)
    app: ASGIApp = make_ingress(settings, producer) if kind == "ours" else bare_app(producer)
    logging.basicConfig(level=logging.WARNING)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        ws="none",
        lifespan="off",
        log_level="warning",
        access_log=False,
        log_config=None,
    )
    try:
        uvicorn.Server(config).run()
    finally:
        producer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
