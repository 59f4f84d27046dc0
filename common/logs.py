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


class OutageExplained(logging.Filter):
    """Two CRITICAL lines of kombu and Celery that a Redis outage or failover writes, and that
    lose nothing, are written at WARNING and say why:

    * kombu's "Could not restore message": during a Redis outage it could not put a message it
      held back on the queue (the channel was already gone). Each ticket of that message is
      recovered by the ticket store (its holder's heartbeat, its lease, its watchdog).
    * Celery's "Frequent restarts detected": its consumer reconnects again and again while
      Redis refuses it (a failover under way, a master without its replica); it waits a little
      and goes on.
    """

    EXPLAINED = {
        "Could not restore message": (
            " (during a Redis outage; its tickets are not lost: each is queued again by its"
            " watchdog or taken over when its holder's lease or heartbeat ends)"
        ),
        "Frequent restarts detected": (
            " (Redis refuses the consumer for now: an outage or a failover under way; it goes"
            " on reconnecting, nothing is lost)"
        ),
    }

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.CRITICAL:
            for start, why in self.EXPLAINED.items():
                if str(record.msg).startswith(start):
                    record.levelno, record.levelname = logging.WARNING, "WARNING"
                    record.msg = f"{record.msg}{why}"
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
    for name in ("kombu.transport.redis", "celery.worker.consumer.consumer"):
        noisy = logging.getLogger(name)
        if not any(isinstance(f, OutageExplained) for f in noisy.filters):
            noisy.addFilter(OutageExplained())
