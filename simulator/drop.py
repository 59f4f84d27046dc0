"""Ending a request with no HTTP answer at all: the server just closes the connection.

ASGI has no message for "close without answering". An app that returns without sending
``http.response.start`` makes uvicorn (h11 and httptools alike) log an error and answer 500
itself, and so does an app that raises. So a handler returns ``DropConnection()``, and the
outermost layer (``DroppingStarlette``), which still holds the server's own ``send``, closes the
connection's transport and then waits until the server has seen the disconnect: uvicorn then
neither answers nor logs. The client sees the connection close with zero bytes received
(httpx: ``RemoteProtocolError`` "Server disconnected without sending a response.").

Reaching the transport relies on uvicorn's ``send`` being a method of its request cycle, which
keeps the ``transport`` (true of its h11 and httptools protocols, checked on 0.54). Under a
server without one (``httpx.ASGITransport`` in unit tests) the app raises ``ConnectionDropped``
instead, which ASGITransport hands on to the client: again, no response at all.
"""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

_DROP_KEY = "simulator.drop"


class ConnectionDropped(Exception):
    """Raised out of the app to drop a call where the server exposes no transport to close."""


class _DropRequest:
    """Shared through the scope, so a handler deep in the stack can ask the outer layer."""

    def __init__(self) -> None:
        self.requested = False


class DropConnection(Response):
    """A handler's answer meaning: send nothing and close the connection.

    It has no HTTP status (``status_code`` is 0) and needs the app to be a
    ``DroppingStarlette``.
    """

    def __init__(self) -> None:
        """Make the drop answer."""
        super().__init__(status_code=0)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send nothing; ask the outermost layer to close the connection once the stack returns.

        Raises:
            RuntimeError: The app is not a ``DroppingStarlette``.
        """
        request = scope.get(_DROP_KEY)
        if not isinstance(request, _DropRequest):
            raise RuntimeError("DropConnection needs the app to be a DroppingStarlette")
        request.requested = True


class DroppingStarlette(Starlette):
    """A Starlette app whose handlers may answer ``DropConnection()``."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app; if a handler asked for a drop, close the connection unanswered.

        Raises:
            ConnectionDropped: A drop was asked for but the server exposes no transport.
        """
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = _DropRequest()
        scope[_DROP_KEY] = request
        await super().__call__(scope, receive, send)
        if request.requested:
            await _close_unanswered(receive, send)


async def _close_unanswered(receive: Receive, send: Send) -> None:
    # ``send`` here is the server's own callable: no middleware has wrapped it yet.
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if not isinstance(transport, asyncio.BaseTransport):
        raise ConnectionDropped("connection dropped without an answer")
    transport.close()
    # Returning at once would race the server: uvicorn would see a finished app, no response
    # and no disconnect yet (connection_lost runs on a later loop turn), log an error and try
    # a 500. Its receive() answers http.disconnect once it has noticed the close.
    while (await receive())["type"] != "http.disconnect":
        pass
