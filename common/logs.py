"""Logging for every process: plain text, or one JSON object a line for log pipelines.

Log calls pass context as ``extra`` fields (``ticket``, ``attempt``, ``outcome``,
``http_status``, ``error_code``, ``request_id``, ``wait_reason``, ``delay_s``...); the JSON
format (python-json-logger) emits them as keys, the text format appends them as ``key=value``.
Nothing secret is ever passed: secrets live in ``SecretStr`` and never reach a log call.

Two libraries pass extras of their own that do not belong in a log line: uvicorn's
``color_message`` (the message again, with ANSI colour codes) and Celery's ``data`` (the whole
task message: arguments, return value). Both are dropped; of Celery's, the task id, the task
name and the run time are kept.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, Literal

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as _LibraryJsonFormatter

# The attributes every LogRecord has; anything else on a record came in through ``extra``.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
# Extras never written: uvicorn's coloured copy of the message, Celery's message dump.
_DROPPED = {"color_message", "data"}
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _celery_task(record: logging.LogRecord) -> dict[str, Any]:
    """The task id, name and run time from Celery's ``data`` extra, without the message."""
    data = record.__dict__.get("data")
    if not (record.name.startswith("celery") and isinstance(data, dict)):
        return {}
    picked = {"task_id": data.get("id"), "task": data.get("name"), "runtime_s": data.get("runtime")}
    return {k: v for k, v in picked.items() if v is not None}


def _context(record: logging.LogRecord) -> dict[str, Any]:
    extras = {
        k: v
        for k, v in record.__dict__.items()
        if k not in _STANDARD and k not in _DROPPED and not k.startswith("_")
    }
    return {**extras, **_celery_task(record)}


class JsonFormatter(_LibraryJsonFormatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg``, then the context.

    ``exc`` holds a traceback when there is one. No value carries an ANSI escape.
    """

    def __init__(self) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"name": "logger", "message": "msg", "exc_info": "exc"},
            reserved_attrs=[*RESERVED_ATTRS, *_DROPPED, "taskName"],
            json_ensure_ascii=False,
            json_serializer=functools.partial(json.dumps, separators=(",", ":")),
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        """The time first, the level in lower case, Celery's task fields, no colour codes."""
        fields: dict[str, Any] = {}
        super().add_fields(fields, record, message_dict)
        log_data["ts"] = datetime.fromtimestamp(record.created, UTC).isoformat(
            timespec="milliseconds"
        )
        log_data["level"] = fields.pop("levelname").lower()
        for key, value in {**fields, **_celery_task(record)}.items():
            clean = isinstance(value, str) and "\x1b" in value
            log_data[key] = _ANSI.sub("", value) if clean else value


class TextFormatter(logging.Formatter):
    """``time level logger: message key=value...``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """Render a record as text with its context appended."""
        text = super().format(record)
        context = {k: v for k, v in _context(record).items() if k not in ("task_id", "task")}
        if context:
            text += " " + " ".join(f"{k}={v}" for k, v in context.items())
        return text


class KombuRestoreExplained(logging.Filter):
    """kombu logs CRITICAL "Could not restore message" when, during a Redis outage, it cannot
    put a message it held back on the queue (the channel was already gone). Nothing is lost:
    each ticket of that message is recovered by the ticket store (its holder's heartbeat, its
    lease, its watchdog). Such a line is written at WARNING, and says so."""

    EXPLAINED = (
        " (during a Redis outage; its tickets are not lost: each is queued again by its"
        " watchdog or taken over when its holder's lease or heartbeat ends)"
    )

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.CRITICAL and str(record.msg).startswith(
            "Could not restore message"
        ):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg = f"{record.msg}{self.EXPLAINED}"
            record.exc_info, record.exc_text = None, None
        return True


class StandardError(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of the line (a test may swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        """Write the record to the current standard error."""
        self.stream = sys.stderr
        super().emit(record)


def configure_logging(fmt: Literal["text", "json"] = "text", level: str | int = "INFO") -> None:
    """Send every logger's records to standard error in ``fmt``, at ``level`` and above.

    Python warnings go through logging too (``py.warnings``), so that with ``json`` they are
    JSON lines like the rest.
    """
    handler = StandardError(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    logging.captureWarnings(True)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    # httpx logs every request at INFO; the worker's own line per call says more (outcome,
    # status, error code, the API's request id), so httpx speaks only of problems.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    kombu = logging.getLogger("kombu.transport.redis")
    if not any(isinstance(f, KombuRestoreExplained) for f in kombu.filters):
        kombu.addFilter(KombuRestoreExplained())
