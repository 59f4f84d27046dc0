"""Checking request values: path ids, the create body, paging, fault scripts, rate limits."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from starlette.requests import Request

from htap_sync.simulator.faults import FaultStep

PROJECT_ID_RE = re.compile(r"[A-Za-z0-9]{32}")
_INSTANCE_ID_RE = re.compile(r"[A-Za-z0-9]{36}")
_NAME_RE = re.compile(r"[A-Za-z0-9_]+")
_DIGITS_RE = re.compile(r"[0-9]{1,9}")  # more digits than that is out of range anyway
# field -> (min length, max length) for the names of the create body.
_NAME_LENGTHS = {"source_database": (3, 1024), "target_database": (3, 128), "task_name": (3, 128)}
_BODY_FIELDS = frozenset({"source_instance_id", "source_node_id", *_NAME_LENGTHS})
MAX_LIMIT = 100


class InvalidParameter(Exception):
    """A request value broke a rule; becomes 400 DBS.280001."""

    def __init__(self, field: str, rule: str) -> None:
        """Name the ``field`` and the ``rule`` it broke."""
        super().__init__(f"Invalid parameter: {field}: {rule}")
        self.field = field
        self.rule = rule


@dataclass(frozen=True)
class CreateBody:
    """The fields of a valid create body."""

    source_instance_id: str
    source_node_id: str | None
    source_database: str
    target_database: str
    task_name: str


def path_ids(request: Request) -> tuple[str, str]:
    """Return the checked ``(project_id, instance_id)`` of the path."""
    project_id: str = request.path_params["project_id"]
    instance_id: str = request.path_params["instance_id"]
    if not PROJECT_ID_RE.fullmatch(project_id):
        raise InvalidParameter("project_id", "must be 32 letters or digits")
    if not _INSTANCE_ID_RE.fullmatch(instance_id):
        raise InvalidParameter("instance_id", "must be 36 letters or digits")
    return project_id, instance_id


def parse_create_body(raw: bytes) -> CreateBody:
    """Parse and check a create body (JSON object)."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidParameter("body", "must be a JSON object") from None
    if not isinstance(body, dict):
        raise InvalidParameter("body", "must be a JSON object")
    unknown = sorted(set(body) - _BODY_FIELDS)
    if unknown:
        raise InvalidParameter(unknown[0], "unknown field")

    source_instance_id = body.get("source_instance_id")
    if source_instance_id is None:
        raise InvalidParameter("source_instance_id", "required")
    if not isinstance(source_instance_id, str) or not _INSTANCE_ID_RE.fullmatch(source_instance_id):
        raise InvalidParameter("source_instance_id", "must be 36 letters or digits")
    # Optional: null is taken as "omitted" (the primary node), as clients often send it so.
    source_node_id = body.get("source_node_id")
    if source_node_id is not None and not isinstance(source_node_id, str):
        raise InvalidParameter("source_node_id", "must be a string")

    names: dict[str, str] = {}
    for field, (shortest, longest) in _NAME_LENGTHS.items():
        value = body.get(field)
        if value is None:
            raise InvalidParameter(field, "required")
        if not isinstance(value, str) or not shortest <= len(value) <= longest:
            raise InvalidParameter(field, f"must be {shortest}-{longest} characters")
        if not _NAME_RE.fullmatch(value):
            raise InvalidParameter(field, "only letters, digits and _ are allowed")
        names[field] = value
    return CreateBody(
        source_instance_id=source_instance_id,
        source_node_id=source_node_id,
        source_database=names["source_database"],
        target_database=names["target_database"],
        task_name=names["task_name"],
    )


def query_int(request: Request, name: str, *, default: int, low: int, high: int | None) -> int:
    """Return query parameter ``name`` as an int in ``low..high``, or ``default`` if absent."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    rule = f"must be an integer from {low} to {high}" if high else f"must be an integer >= {low}"
    if not _DIGITS_RE.fullmatch(raw):
        raise InvalidParameter(name, rule)
    value = int(raw)
    if value < low or (high is not None and value > high):
        raise InvalidParameter(name, rule)
    return value


def parse_script(raw: bytes) -> list[FaultStep]:
    """Parse a ``POST /_sim/script`` body: a JSON list of step texts such as ``"throttle:12"``."""
    try:
        steps = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidParameter("body", "must be a JSON list of fault names") from None
    if not isinstance(steps, list):
        raise InvalidParameter("body", "must be a JSON list of fault names")
    parsed: list[FaultStep] = []
    for index, step in enumerate(steps):
        if not isinstance(step, str):
            raise InvalidParameter(f"body[{index}]", "must be a string")
        try:
            parsed.append(FaultStep.parse(step))
        except ValueError as exc:
            raise InvalidParameter(f"body[{index}]", str(exc)) from None
    return parsed


def parse_rate_limit(raw: bytes) -> tuple[float | None, int | None]:
    """Parse a ``PUT /_sim/rate-limit`` body: ``{"per_s": N or null, "burst": N or null}``.

    ``per_s`` is required (null removes the limit, so an empty object cannot do it by
    mistake); ``burst`` may be left out. Only types are checked here: the limiter checks ranges.
    """
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidParameter("body", "must be a JSON object") from None
    if not isinstance(body, dict):
        raise InvalidParameter("body", "must be a JSON object")
    unknown = sorted(set(body) - {"per_s", "burst"})
    if unknown:
        raise InvalidParameter(unknown[0], "unknown field")
    if "per_s" not in body:
        raise InvalidParameter("per_s", "required (null removes the limit)")
    per_s, burst = body["per_s"], body.get("burst")
    if per_s is not None and (not isinstance(per_s, (int, float)) or isinstance(per_s, bool)):
        raise InvalidParameter("per_s", "must be a number or null")
    if burst is not None and (not isinstance(burst, int) or isinstance(burst, bool)):
        raise InvalidParameter("burst", "must be an integer or null")
    return per_s, burst
