"""Command line: ``python -m simulator --host H --port P [options]`` serves one simulator."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from simulator.config import FAULT_RATE_FIELDS, SimulatorConfig
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
    faults = parser.add_argument_group(
        "faults", "fractions (0-1) of valid create calls, adding up to at most 1"
    )
    for flag, help_text in _RATE_FLAGS:
        faults.add_argument(flag, type=float, default=0.0, metavar="RATE", help=help_text)
    faults.add_argument(
        "--hang-ms", type=int, default=30_000, help="how long a hang lasts, ms (default 30000)"
    )
    faults.add_argument(
        "--retry-after-s",
        type=_int_or_none,
        default=2,
        metavar="N|none",
        help="Retry-After seconds of a 429; 'none' omits the header (default 2)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the fault RNG")
    limit = parser.add_argument_group(
        "gateway rate limit",
        "a token bucket per project on valid create calls; beyond it: 429 APIGW.0308 "
        "with Retry-After (change it at run time with PUT /_sim/rate-limit)",
    )
    limit.add_argument(
        "--rate-limit-per-s",
        type=float,
        default=None,
        metavar="RATE",
        help="create calls per second per project (default: no limit)",
    )
    limit.add_argument(
        "--rate-limit-burst",
        type=int,
        default=None,
        metavar="N",
        help="calls a project may make at once (default: max(1, ceil(RATE)))",
    )
    iam = parser.add_argument_group(
        "IAM password login",
        "serve POST /v3/auth/tokens for this one account; the tokens it issues are valid "
        "X-Auth-Token values until they expire",
    )
    iam.add_argument("--iam-domain", metavar="ACCOUNT", help="account (domain) name")
    iam.add_argument("--iam-user", metavar="USER", help="IAM user name")
    iam.add_argument("--iam-password", metavar="PWD", help="that user's password")
    iam.add_argument(
        "--token-lifetime-s",
        type=float,
        default=86_400.0,
        metavar="S",
        help="seconds an issued token stays valid (default 86400)",
    )
    return parser


# Each --X-rate flag fills the SimulatorConfig field X_rate (argparse's dest naming).
_RATE_FLAGS = (
    ("--fail-rate", "answer 500 before creating"),
    ("--created-then-500-rate", "create the task, then answer 500"),
    ("--drop-after-create-rate", "create the task, then close the connection unanswered"),
    ("--hang-rate", "create nothing, hold the request --hang-ms, then answer 500"),
    ("--hang-after-create-rate", "create the task, hold the request --hang-ms, then answer"),
    ("--throttle-rate", "answer 429 APIGW.0308 with Retry-After, create nothing"),
    ("--in-progress-rate", "answer 409 DBS.200047 (operation in progress), create nothing"),
)


def _int_or_none(text: str) -> int | None:
    if text.lower() == "none":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer or 'none': {text!r}") from None


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
        hang_ms=args.hang_ms,
        retry_after_s=args.retry_after_s,
        seed=args.seed,
        rate_limit_per_s=args.rate_limit_per_s,
        rate_limit_burst=args.rate_limit_burst,
        iam_domain=args.iam_domain,
        iam_user=args.iam_user,
        iam_password=args.iam_password,
        token_lifetime_s=args.token_lifetime_s,
        **{name: getattr(args, name) for name in FAULT_RATE_FIELDS},
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
