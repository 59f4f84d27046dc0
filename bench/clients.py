"""Raw HTTP clients posting create calls straight to the simulator: throughput references."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Literal

import aiohttp
import httpx

from bench.fixtures import INSTANCE, PROJECT, SOURCE, TOKEN, child_env
from htap_sync.simulator import SimulatorServer

# aiohttp and httpx.AsyncClient: C coroutines on one client. httpx-threads: one sync
# httpx.Client shared by C threads, as our worker uses httpx (without Celery, Redis or the
# rate limit). Each runs in a process of its own, as a worker does, never sharing the GIL of
# the simulator, which runs in the benchmark's process.
Client = Literal["aiohttp", "httpx-async", "httpx-threads"]
CLIENTS: tuple[Client, ...] = ("aiohttp", "httpx-async", "httpx-threads")
PATH = f"/v3/{PROJECT}/instances/{INSTANCE}/starrocks/databases/replication"
TIMEOUT_S = 30.0


def _bodies(prefix: str, n: int) -> list[bytes]:
    return [
        json.dumps(
            {
                "source_instance_id": SOURCE,
                "source_database": f"{prefix}_{i:05d}",
                "target_database": f"{prefix}_{i:05d}",
                "task_name": f"{prefix}_{i:05d}",
            },
            separators=(",", ":"),
        ).encode()
        for i in range(n)
    ]


def _headers(token: str) -> dict[str, str]:
    return {"X-Auth-Token": token, "Content-Type": "application/json;charset=utf-8"}


async def _aiohttp(url: str, token: str, bodies: list[bytes], concurrency: int) -> int:
    todo: Iterator[bytes] = iter(bodies)
    ok = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    async with aiohttp.ClientSession(
        url, connector=connector, timeout=timeout, headers=_headers(token)
    ) as session:

        async def one_lane() -> None:
            nonlocal ok
            for body in todo:  # shared iterator: each body is posted once, by one lane
                async with session.post(PATH, data=body) as response:
                    await response.read()
                    ok += response.status == 200

        await asyncio.gather(*(one_lane() for _ in range(concurrency)))
    return ok


async def _httpx_async(url: str, token: str, bodies: list[bytes], concurrency: int) -> int:
    todo: Iterator[bytes] = iter(bodies)
    ok = 0
    async with httpx.AsyncClient(base_url=url, headers=_headers(token), timeout=TIMEOUT_S) as http:

        async def one_lane() -> None:
            nonlocal ok
            for body in todo:
                response = await http.post(PATH, content=body)
                ok += response.status_code == 200

        await asyncio.gather(*(one_lane() for _ in range(concurrency)))
    return ok


def post_in_threads(http: httpx.Client, bodies: list[bytes], concurrency: int) -> int:
    """POST every body with ``concurrency`` threads sharing ``http``; how many got 200."""
    lock = threading.Lock()
    todo: Iterator[bytes] = iter(bodies)
    ok = 0

    def one_lane() -> None:
        nonlocal ok
        while True:
            with lock:
                body = next(todo, None)
            if body is None:
                return
            status = http.post(PATH, content=body).status_code
            with lock:
                ok += status == 200

    threads = [threading.Thread(target=one_lane) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=TIMEOUT_S * len(bodies))
    return ok


def _httpx_threads(url: str, token: str, bodies: list[bytes], concurrency: int) -> int:
    with httpx.Client(base_url=url, headers=_headers(token), timeout=TIMEOUT_S) as http:
        return post_in_threads(http, bodies, concurrency)


def post_all(client: Client, url: str, token: str, bodies: list[bytes], concurrency: int) -> int:
    """Post every body with ``concurrency`` calls in flight; return how many got 200."""
    if client == "aiohttp":
        return asyncio.run(_aiohttp(url, token, bodies, concurrency))
    if client == "httpx-async":
        return asyncio.run(_httpx_async(url, token, bodies, concurrency))
    return _httpx_threads(url, token, bodies, concurrency)


def run_client(
    client: Client,
    sim: SimulatorServer,
    *,
    requests: int,
    concurrency: int,
    prefix: str,
    progress: Callable[[str], None] = lambda _: None,
) -> list[float]:
    """Run one raw client in a child process; the simulator's arrival times of its calls."""
    before = len(sim.state.create_call_times())
    argv = [sys.executable, "-m", "bench.clients", client, "--url", sim.url, "--token", TOKEN]
    argv += ["--prefix", prefix, "--requests", str(requests), "--concurrency", str(concurrency)]
    done = subprocess.run(
        argv,
        env=child_env({}),
        capture_output=True,
        text=True,
        timeout=60 + requests * TIMEOUT_S / concurrency,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{client} client failed:\n{done.stderr[-2000:]}")
    ok = json.loads(done.stdout)["ok"]
    if ok != requests:
        raise RuntimeError(f"{client}: {ok} of {requests} create calls answered 200")
    progress(f"{client}: {requests} calls in {json.loads(done.stdout)['elapsed_s']:.2f} s")
    return sim.state.create_call_times()[before:]


def main(argv: list[str] | None = None) -> int:
    """Post the calls; print ``{"ok": n, "elapsed_s": s}`` as JSON."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("client", choices=CLIENTS)
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args(argv)
    bodies = _bodies(args.prefix, args.requests)
    started = time.perf_counter()
    ok = post_all(args.client, args.url, args.token, bodies, args.concurrency)
    print(json.dumps({"ok": ok, "elapsed_s": time.perf_counter() - started}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
