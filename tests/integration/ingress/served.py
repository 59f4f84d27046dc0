"""The HTTP ingress served by uvicorn on loopback, and what its tests share: keys, limits,
the error list of an answer, numbered requests."""

from __future__ import annotations

import re
import socket
import threading
import time
from types import TracebackType
from typing import Any, Self

import httpx
import uvicorn
from starlette.applications import Starlette

from htap_sync.producer.ingress import ingress_config
from tests.conftest import request_data

KEY = "ingress-test-key-1"
SECOND_KEY = "ingress-test-key-2"
AUTH = {"X-API-Key": KEY}
MAX_BODY = 4096
MAX_ITEMS = 5
REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


class Served:
    """An app served by uvicorn on a free loopback port, from a thread of the test process."""

    def __init__(self, app: Starlette) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        config = ingress_config(app, host="127.0.0.1", port=self.port, configure_logging=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def __enter__(self) -> Self:
        """Start serving; return once uvicorn reports it started."""
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert self._thread.is_alive(), "the ingress server thread died"
            assert time.monotonic() < deadline, "the ingress did not start within 10 s"
            self._thread.join(timeout=0.01)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop serving and release the port."""
        self._server.should_exit = True
        self._thread.join(timeout=10)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout=10)
        self._sock.close()

    def client(self, headers: dict[str, str] | None = None) -> httpx.Client:
        """A client of this server (no proxy from the environment)."""
        return httpx.Client(base_url=self.url, headers=headers, timeout=10, trust_env=False)

    def raw(self, head: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
        """Send bytes as they are and read one answer: (status, headers, body).

        Fails if no complete answer arrives within 5 s, e.g. when the server waits for a body
        it should have refused without reading.
        """
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as conn:
            conn.sendall(head.encode() + b"\r\n\r\n" + body)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                assert chunk, f"connection closed before an answer: {data!r}"
                data += chunk
            raw_head, _, rest = data.partition(b"\r\n\r\n")
            lines = raw_head.decode("latin-1").split("\r\n")
            headers = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
            length = int(headers["content-length"])
            while len(rest) < length:
                chunk = conn.recv(65536)
                assert chunk, "connection closed inside the answer"
                rest += chunk
        return int(lines[0].split()[1]), headers, rest


def errors_of(response: httpx.Response) -> list[dict[str, str]]:
    assert response.headers["content-type"] == "application/json"
    errors = response.json()["errors"]
    assert isinstance(errors, list)
    return errors


def request_n(n: int, **changes: str) -> dict[str, str]:
    return request_data(**{"task_name": f"ingress_task_{n:04d}", **changes})


def new_replication(document: dict[str, Any]) -> dict[str, Any]:
    """The schema of one request object in the POST's request body."""
    post = document["paths"]["/v1/replications"]["post"]
    one: dict[str, Any] = post["requestBody"]["content"]["application/json"]["schema"]["oneOf"][0]
    assert one["title"] == "NewReplication"
    return one
