"""Log lines as operators read them: JSON without colour codes or message dumps, text alike."""

from __future__ import annotations

import json
import logging
import sys

from htap_sync.common.logs import JsonFormatter, TextFormatter, configure_logging

ANSI = "\x1b[36m"


def _record(name: str, msg: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord(name, logging.INFO, __file__, 1, msg, args or None, None)
    record.__dict__.update(extra)
    return record


def _celery_received() -> logging.LogRecord:
    context = {"id": "abc-123", "name": "htap_sync.create_replication"}
    data = {**context, "args": "()", "kwargs": "{'request': {'task_name': 'orders'}}"}
    record = _record("celery.worker.strategy", "Task %(name)s[%(id)s] received", context)
    record.__dict__["data"] = data
    return record


def test_json_lines_carry_context_and_no_colour_codes() -> None:
    """A JSON line holds ts, level, logger, msg and the extras; uvicorn's coloured copy of the
    message is dropped and no value keeps an ANSI escape."""
    record = _record(
        "uvicorn.error",
        "Started server process [%d]",
        42,
        color_message=f"Started server process [{ANSI}%d\x1b[0m]",
        request_id="r-1",
    )
    line = JsonFormatter().format(record)
    data = json.loads(line)
    assert list(data)[:4] == ["ts", "level", "logger", "msg"]
    assert data["level"] == "info" and data["logger"] == "uvicorn.error"
    assert data["msg"] == "Started server process [42]"
    assert data["request_id"] == "r-1"
    assert "color_message" not in data and "\\u001b" not in line and "\x1b" not in line


def test_json_strips_escapes_from_a_message() -> None:
    """A message that itself contains colour codes is written without them."""
    data = json.loads(JsonFormatter().format(_record("x", f"{ANSI}red\x1b[0m text")))
    assert data["msg"] == "red text"


def test_celery_received_lines_keep_the_task_not_the_message() -> None:
    """Celery's 'received' line keeps the task id and name, never the arguments it carried."""
    json_line = JsonFormatter().format(_celery_received())
    data = json.loads(json_line)
    assert data["task_id"] == "abc-123" and data["task"] == "htap_sync.create_replication"
    assert "data" not in data and "orders" not in json_line
    text_line = TextFormatter().format(_celery_received())
    assert text_line.endswith("Task htap_sync.create_replication[abc-123] received")
    assert "orders" not in text_line and "data=" not in text_line


def test_json_keeps_a_traceback_under_exc() -> None:
    """An exception's traceback is one ``exc`` string of the same JSON object."""
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    data = json.loads(JsonFormatter().format(record))
    assert data["level"] == "error" and "ValueError: boom" in data["exc"]


def test_text_appends_context_as_key_value() -> None:
    """The text format appends extras as key=value, without uvicorn's coloured copy."""
    record = _record("w", "ticket %s done", "tk_1", ticket="tk_1", color_message=ANSI)
    line = TextFormatter().format(record)
    assert line.endswith("w: ticket tk_1 done ticket=tk_1")


def test_configure_logging_leaves_httpx_request_lines_out() -> None:
    """After configure_logging, httpx's per-request INFO lines are not written (the worker
    logs each call itself), while its warnings still are."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging.getLogger("httpx").level)
    try:
        configure_logging("json", "INFO")
        httpx_log = logging.getLogger("httpx")
        assert not httpx_log.isEnabledFor(logging.INFO)
        assert httpx_log.isEnabledFor(logging.WARNING)
        assert isinstance(root.handlers[0].formatter, JsonFormatter)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        logging.getLogger("httpx").setLevel(saved[2])


def test_kombus_could_not_restore_is_a_warning_that_explains_itself() -> None:
    """kombu's CRITICAL "Could not restore message" (a Redis outage) is written at WARNING,
    saying why nothing is lost; kombu's other lines pass as they are."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    try:
        configure_logging("text", "INFO")
        root.addHandler(Keep())
        kombu = logging.getLogger("kombu.transport.redis")
        try:
            raise RuntimeError("channel gone")
        except RuntimeError:
            kombu.critical("Could not restore message: %r", {"body": "x"}, exc_info=True)
        kombu.critical("something else")
        consumer = logging.getLogger("celery.worker.consumer.consumer")
        consumer.critical("Frequent restarts detected: %r", "RestartFreqExceeded('5 in 1s')")
        restored, other, restarts = seen
        assert restored.levelno == logging.WARNING and restored.exc_info is None
        assert "not lost" in restored.getMessage()
        assert other.levelno == logging.CRITICAL
        assert restarts.levelno == logging.WARNING and "failover" in restarts.getMessage()
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
