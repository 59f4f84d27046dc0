"""Many calls in flight from plain threads: a sync httpx transport backed by one event loop.

The batch path's create calls go out together: :func:`send_many` signs each request with the
client's own auth in the calling thread and hands them all to the process's event-loop thread
(:class:`EventLoop`) at once, through :meth:`LoopTransport.handle_many`, where an async
transport sends them and reads their answers in full. A batch ticket that goes on alone (a
look first, a token to wait for) calls through the same :class:`LoopTransport` one request at
a time (``handle_request``), from its thread, with the same
:class:`~htap_sync.worker.api.client.TaurusClient` and signing as a single delivery. Either way
the calls of every batch share one loop and its connection pool instead of a thread each
blocking in a socket.

The async transport is httpx's own (``AsyncHTTPTransport``) or aiohttp's through the
``httpx-aiohttp`` package (:class:`AiohttpTransport`), picked by ``bench/transports.py``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, Literal, TypeVar, cast

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport as _RawAiohttp

T = TypeVar("T")
Kind = Literal["aiohttp", "httpx"]
# bench/transports.py, 16 calls in flight: aiohttp used 0.23x the CPU per call of httpx and
# carried 3.6x the calls per second.
DEFAULT_KIND: Kind = "aiohttp"
# Past the request's own timeouts, how long a caller waits on a loop that stopped answering.
_GRACE_S = 5.0


class EventLoop:
    """An asyncio event loop running in a daemon thread of its own, for coroutines handed in
    from other threads."""

    def __init__(self, name: str = "htap-sync-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the loop; its result (or exception) comes through the future."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float | None = None) -> T:
        """Run ``coro`` on the loop and wait for its result (from any thread but the loop's)."""
        future = self.submit(coro)
        try:
            return future.result(timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    def close(self) -> None:
        """Stop the loop and its thread."""
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.loop.close()


def _budget_s(request: httpx.Request) -> float | None:
    """The longest a request may take by its own timeouts (None: unbounded)."""
    timeout = request.extensions.get("timeout") or {}
    total = _GRACE_S
    for part in ("connect", "read", "write", "pool"):
        value = timeout.get(part)
        if value is None:
            return None
        total += float(value)
    return total


class LoopTransport(httpx.BaseTransport):
    """A sync transport that sends through an async one on an :class:`EventLoop`.

    The answer is read in full on the loop, so the calling thread never touches the loop's
    sockets. httpx's exceptions pass through unchanged, which keeps "not sent" (connect
    errors) apart from "sent, no answer" (everything else) for the worker's classification.
    """

    def __init__(self, transport: httpx.AsyncBaseTransport, loop: EventLoop) -> None:
        self._transport = transport
        self._loop = loop

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` on the loop and wait for its whole answer."""
        try:
            return self._loop.run(self._send(request), _budget_s(request))
        except concurrent.futures.TimeoutError as exc:
            raise httpx.ReadTimeout("no answer from the event loop", request=request) from exc

    def handle_many(self, requests: Sequence[httpx.Request]) -> list[httpx.Response | Exception]:
        """Send ``requests`` together on the loop; each one's answer or httpx exception."""
        budgets = [_budget_s(request) for request in requests]
        budget = None if None in budgets else max((b for b in budgets if b), default=_GRACE_S)

        async def together() -> list[httpx.Response | BaseException]:
            sends = (self._send(request) for request in requests)
            return await asyncio.gather(*sends, return_exceptions=True)

        try:
            answers = self._loop.run(together(), budget)
        except concurrent.futures.TimeoutError:
            return [httpx.ReadTimeout("no answer from the event loop", request=r) for r in requests]
        return [_exception(a) if isinstance(a, BaseException) else a for a in answers]

    async def _send(self, request: httpx.Request) -> httpx.Response:
        response = await self._transport.handle_async_request(request)
        try:
            content = await response.aread()
        finally:
            await response.aclose()
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            content=content,
            extensions=response.extensions,
            request=request,
        )

    def close(self) -> None:
        """Close the async transport (on its loop)."""
        if not self._loop.loop.is_closed():
            self._loop.run(self._transport.aclose(), _GRACE_S)


def _exception(caught: BaseException) -> Exception:
    """A failure of one send of :meth:`LoopTransport.handle_many`, never a BaseException
    (a cancelled send, when the loop shut down, reads as an answer that never came)."""
    if isinstance(caught, Exception):
        return caught
    return RuntimeError(f"send interrupted: {type(caught).__name__}")


def send_many(
    http: httpx.Client, transport: LoopTransport, requests: Sequence[httpx.Request]
) -> list[httpx.Response | Exception]:
    """Send requests built by ``http`` together through ``transport``, each with ``http``'s
    auth, as ``http.send`` would send it alone: each answer, or what its sending raised.

    The auth flows run here, in the calling thread (an IAM token may be fetched); their
    requests go out in rounds, each round in flight together (a flow that answers a 401 with
    a retry takes a second round).
    """
    auth = http.auth or httpx.Auth()
    flows = [auth.sync_auth_flow(request) for request in requests]
    results: list[httpx.Response | Exception | None] = [None] * len(requests)
    pending: dict[int, httpx.Request] = {}
    for index, flow in enumerate(flows):
        try:
            pending[index] = next(flow)
        except Exception as exc:  # the flow's failure is this request's
            results[index] = exc
    while pending:
        sent = list(pending.items())
        pending = {}
        answers = transport.handle_many([request for _, request in sent])
        for (index, _), answer in zip(sent, answers, strict=True):
            results[index] = answer
            if isinstance(answer, Exception):
                flows[index].close()
                continue
            try:
                pending[index] = flows[index].send(answer)
            except StopIteration:
                pass
            except Exception as exc:  # the flow's failure is this request's
                results[index] = exc
    # Every request ended in its flow's failure or in an answer (the loop above sets each).
    return cast(list[httpx.Response | Exception], results)


def _mapped(exc: BaseException, request: httpx.Request) -> httpx.HTTPError:
    """An aiohttp failure as the httpx exception that tells whether the request went out.

    ``httpx-aiohttp`` maps every ``ClientConnectionError`` to ``ConnectTimeout``, a server
    that hung up after reading the request (``ServerDisconnectedError``) included: that would
    read as "not sent" and clear a ticket's doubt although the task may exist. Only a failure
    to connect is "not sent" here.
    """
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    text = f"{type(cause).__name__}: {cause}"
    if isinstance(cause, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(text, request=request)
    if isinstance(cause, aiohttp.ClientConnectorError):
        return httpx.ConnectError(text, request=request)
    if isinstance(cause, (aiohttp.SocketTimeoutError, TimeoutError)):
        return httpx.ReadTimeout(text, request=request)
    return httpx.RemoteProtocolError(text, request=request)


class AiohttpTransport(httpx.AsyncBaseTransport):
    """``httpx-aiohttp``'s transport with every failure mapped by :func:`_mapped`, and the
    answer read in full before it is returned (a failure mid-body is mapped too)."""

    def __init__(self, *, verify: bool = True, limits: httpx.Limits | None = None) -> None:
        self._inner = _RawAiohttp(verify=verify, limits=limits or httpx.Limits())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and read its answer."""
        try:
            response = await self._inner.handle_async_request(request)
            try:
                content = await response.aread()
            finally:
                await response.aclose()
        except (TimeoutError, httpx.HTTPError, aiohttp.ClientError) as exc:
            raise _mapped(exc, request) from exc
        return httpx.Response(
            response.status_code, headers=response.headers, content=content, request=request
        )

    async def aclose(self) -> None:
        """Close aiohttp's session."""
        await self._inner.aclose()


def async_transport(
    kind: Kind = DEFAULT_KIND, *, max_connections: int = 100
) -> httpx.AsyncBaseTransport:
    """A new async transport of ``kind``: ``aiohttp`` or ``httpx`` (TLS verified)."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=20)
    if kind == "aiohttp":
        return AiohttpTransport(limits=limits)
    if kind == "httpx":
        return httpx.AsyncHTTPTransport(limits=limits)
    raise ValueError(f"transport: unknown kind {kind!r} (aiohttp or httpx)")
