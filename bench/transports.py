"""The batched path's async transport: ``httpx-aiohttp`` against httpx's ``AsyncHTTPTransport``.

Each posts the same create calls to the simulator through our :class:`LoopTransport` (a sync
``httpx.Client`` per thread group, requests handed to one event-loop thread), with
``concurrency`` threads in flight, as a worker runs a batch. Each run is a child process (the
simulator, in this process, never shares its GIL) that reports its own CPU seconds.

    python -m bench.transports [--requests 1500] [--concurrency 16] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from typing import Any

import httpx

from bench.clients import TIMEOUT_S, _bodies, _headers, post_in_threads
from bench.fixtures import TOKEN, child_env, simulator
from htap_sync.worker.api.aio import EventLoop, Kind, LoopTransport, async_transport

KINDS: tuple[Kind, ...] = ("httpx", "aiohttp")


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def post_all(kind: Kind, url: str, bodies: list[bytes], concurrency: int) -> dict[str, float]:
    """Post every body through a LoopTransport over ``kind`` from ``concurrency`` threads."""
    loop = EventLoop()
    transport = LoopTransport(async_transport(kind), loop)
    http = httpx.Client(
        base_url=url, headers=_headers(TOKEN), timeout=TIMEOUT_S, transport=transport
    )
    cpu, started = _cpu_s(), time.perf_counter()
    ok = post_in_threads(http, bodies, concurrency)
    elapsed, cpu = time.perf_counter() - started, _cpu_s() - cpu
    http.close()
    loop.close()
    return {"ok": ok, "elapsed_s": elapsed, "cpu_s": cpu}


def _child(kind: Kind, url: str, prefix: str, requests: int, concurrency: int) -> dict[str, Any]:
    argv = [sys.executable, "-m", "bench.transports", "--child", kind, "--url", url]
    argv += ["--prefix", prefix, "--requests", str(requests), "--concurrency", str(concurrency)]
    done = subprocess.run(
        argv, env=child_env({}), capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{kind} transport failed:\n{done.stderr[-2000:]}")
    figures: dict[str, Any] = json.loads(done.stdout)
    if figures["ok"] != requests:
        raise RuntimeError(f"{kind}: {figures['ok']} of {requests} calls answered 200")
    return figures


def measure(*, requests: int = 1500, concurrency: int = 16, repeat: int = 3) -> dict[str, Any]:
    """The best run of each transport (alternated runs, one simulator): calls per second, CPU
    microseconds per call, and aiohttp's figures as ratios of httpx's (this run's reference).
    """
    best: dict[str, dict[str, float]] = {}
    with simulator() as sim:
        for attempt in range(repeat):
            for kind in KINDS:
                got = _child(kind, sim.url, f"tr{attempt}{kind}", requests, concurrency)
                if kind not in best or got["cpu_s"] < best[kind]["cpu_s"]:
                    best[kind] = got
    figures: dict[str, Any] = {
        kind: {
            "calls_per_s": requests / got["elapsed_s"],
            "cpu_us_per_call": 1e6 * got["cpu_s"] / requests,
        }
        for kind, got in best.items()
    }
    figures["aiohttp_cpu_ratio"] = best["aiohttp"]["cpu_s"] / best["httpx"]["cpu_s"]
    figures["aiohttp_speed_ratio"] = best["httpx"]["elapsed_s"] / best["aiohttp"]["elapsed_s"]
    figures["setup"] = {"requests": requests, "concurrency": concurrency, "repeat": repeat}
    return figures


def main(argv: list[str] | None = None) -> int:
    """Measure both (or, with --child, run one and print its figures as JSON)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--child", choices=KINDS)
    parser.add_argument("--url")
    parser.add_argument("--prefix", default="tr")
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    if args.child:
        bodies = _bodies(args.prefix, args.requests)
        print(json.dumps(post_all(args.child, args.url, bodies, args.concurrency)))
        return 0
    figures = measure(requests=args.requests, concurrency=args.concurrency, repeat=args.repeat)
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
