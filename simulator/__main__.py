"""Command line: ``python -m simulator --host H --port P [options]`` serves one simulator."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from simulator.config import SimulatorConfig
from simulator.server import serve


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``python -m simulator``."""
    parser = argparse.ArgumentParser(
        prog="python -m simulator",
        description="Serve a local TaurusDB HTAP (StarRocks) data-sync endpoint.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="TCP port (default 8080)")
    parser.add_argument("--token", help="accept X-Auth-Token equal to this")
    parser.add_argument("--ak", help="accept SDK-HMAC-SHA256 signatures by this access key")
    parser.add_argument("--sk", help="secret key matching --ak")
    parser.add_argument(
        "--unknown-instance",
        action="append",
        default=[],
        metavar="ID",
        help="answer 400 DBS.200022 for this instance id (repeatable)",
    )
    parser.add_argument("--latency-ms", type=int, default=0, help="delay per call, ms")
    parser.add_argument(
        "--fail-rate", type=float, default=0.0, help="fraction of creates answered 500 (0-1)"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the fault RNG")
    return parser


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    """Build a ``SimulatorConfig`` from parsed arguments.

    Raises:
        ValueError: A value is out of range (the message names the field).
    """
    return SimulatorConfig(
        token=args.token,
        ak=args.ak,
        sk=args.sk,
        unknown_instances=frozenset(args.unknown_instance),
        latency_ms=args.latency_ms,
        fail_rate=args.fail_rate,
        seed=args.seed,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Parse ``argv`` and serve until interrupted."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    serve(config, args.host, args.port)


if __name__ == "__main__":
    main()
