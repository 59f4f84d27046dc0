"""JSON logs that are all JSON, in one vocabulary: call outcomes in snake case, the HTTP status
of a successful call, Celery's own lines and Python warnings as JSON lines."""

from __future__ import annotations

import json
import logging
import re
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from htap_sync.common import errors
from htap_sync.common.limits.gate import OPEN_GATE
from htap_sync.common.logs import configure_logging
from htap_sync.common.tickets.claims import Claim
from htap_sync.worker.api.client import Created
from htap_sync.worker.delivery.settle import call_log, gated, outcome_of
from htap_sync.worker.main import say_as_json

CLAIM = Claim("tk_" + "1" * 32, "run-1", attempts=0, created_at=datetime.now(UTC))


def _api_errors() -> Iterator[type[errors.ApiError]]:
    todo: list[type[errors.ApiError]] = [errors.ApiError]
    while todo:
        kind = todo.pop()
        todo += kind.__subclasses__()
        yield kind


def test_every_outcome_is_a_snake_case_word() -> None:
    """``ok`` or the error's kind in snake case: never a class name beside a word."""
    kinds = {kind.__name__: outcome_of(kind("x")) for kind in _api_errors()}
    assert outcome_of(None) == "ok"
    assert kinds["Rejected"] == "rejected" and kinds["ServerError"] == "server_error"
    assert kinds["TransportError"] == "transport_error" and kinds["InProgress"] == "in_progress"
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", word) for word in kinds.values()), kinds


def _call_line(caplog: pytest.LogCaptureFixture) -> logging.LogRecord:
    (record,) = [r for r in caplog.records if r.__dict__.get("api")]
    return record


def test_a_successful_call_logs_its_http_status(caplog: pytest.LogCaptureFixture) -> None:
    """A create that answered 201 logs ``outcome: ok`` with ``http_status: 201``."""
    with caplog.at_level(logging.INFO, logger="htap_sync.worker"):
        gated(
            OPEN_GATE,
            "p",
            "create",
            lambda: Created("job-1", "req-1", 201),
            call_log(CLAIM, "create"),
        )
    line = _call_line(caplog).__dict__
    assert (line["outcome"], line["http_status"], line["request_id"]) == ("ok", 201, "req-1")


def test_a_successful_list_logs_200(caplog: pytest.LogCaptureFixture) -> None:
    """A list call (read page by page, each a 200) logs ``http_status: 200``."""
    with caplog.at_level(logging.INFO, logger="htap_sync.worker"):
        gated(OPEN_GATE, "p", "list", list, call_log(CLAIM, "list"))
    assert _call_line(caplog).__dict__["http_status"] == 200


def test_a_refused_call_logs_its_kind_and_status(caplog: pytest.LogCaptureFixture) -> None:
    """A 400 logs ``outcome: rejected`` with its status and error code."""

    def refused() -> None:
        raise errors.Rejected("bad", http_status=400, error_code="DBS.280001")

    with caplog.at_level(logging.INFO, logger="htap_sync.worker"), pytest.raises(errors.Rejected):
        gated(OPEN_GATE, "p", "create", refused, call_log(CLAIM, "create"))
    line = _call_line(caplog).__dict__
    assert (line["outcome"], line["http_status"], line["error_code"]) == (
        "rejected",
        400,
        "DBS.280001",
    )


def test_celerys_own_lines_are_json(capfd: pytest.CaptureFixture[str]) -> None:
    """What Celery writes past logging (``worker: Warm shutdown``) becomes one JSON line."""
    say_as_json("worker: Warm shutdown (MainProcess)", None)
    (line,) = capfd.readouterr().err.splitlines()
    data = json.loads(line)
    assert (data["logger"], data["msg"]) == ("celery.worker", "worker: Warm shutdown (MainProcess)")


def test_python_warnings_are_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    """A library's warning (Celery's as root, for one) is a JSON line, not a text block."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    logging.captureWarnings(False)  # another test's set-up may have left it on
    try:
        configure_logging("json", "INFO")
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("running as root\nis not recommended", UserWarning, stacklevel=1)
        lines = capsys.readouterr().err.splitlines()
    finally:
        logging.captureWarnings(False)
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    (line,) = lines
    data = json.loads(line)
    assert data["logger"] == "py.warnings" and "running as root" in data["msg"]
