"""The request model enforces every documented rule, names the field, and coerces nothing."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from htap_sync.common.errors import RequestInvalid
from htap_sync.common.models import RULES, ReplicationRequest, parse_request
from tests.conftest import VALID, request_data

ALNUM = string.ascii_letters + string.digits
NAME = ALNUM + "_"


def _fields(exc: RequestInvalid) -> list[str]:
    return [e["field"] for e in exc.errors]


def test_valid_request_round_trips() -> None:
    """A request that follows the rules validates and keeps every value as given."""
    request = parse_request(VALID)
    assert request.model_dump(exclude_none=True) == VALID
    assert request.source_node_id is None
    assert request.body() == {
        k: VALID[k]
        for k in ("source_instance_id", "source_database", "target_database", "task_name")
    }


def test_body_includes_the_node_when_given() -> None:
    """source_node_id goes into the body only when set; path fields never do."""
    node = "a" * 32 + "no07"
    body = parse_request(request_data(source_node_id=node)).body()
    assert body["source_node_id"] == node
    assert "project_id" not in body and "instance_id" not in body


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("project_id", "0123456789abcdef0123456789abcde"),  # 31
        ("project_id", "0123456789abcdef0123456789abcdef0"),  # 33
        ("project_id", "0123456789abcdef0123456789abcde-"),
        ("instance_id", "0f1e2d3c4b5a69788796a5b4c3d2e1f0in1"),  # 35
        ("instance_id", "0f1e2d3c4b5a69788796a5b4c3d2e1f0in17x"),  # 37
        ("source_instance_id", ""),
        ("source_database", "ab"),
        ("source_database", "a" * 1025),
        ("source_database", "bad-name"),
        ("target_database", "a" * 129),
        ("target_database", "数据库"),  # the HTAP side refuses Chinese characters
        ("task_name", "ta"),
        ("task_name", "task name"),
        ("task_name", "task_name\n"),
        ("source_node_id", "short"),
    ],
)
def test_each_rule_is_enforced_and_names_its_field(field: str, value: str) -> None:
    """A value breaking a documented rule is refused with that field and its rule named."""
    with pytest.raises(RequestInvalid) as info:
        parse_request(request_data(**{field: value}))
    assert _fields(info.value) == [field]
    assert info.value.errors[0]["rule"] == RULES[field]
    assert value not in str(info.value) or len(value) < 3  # values are not echoed


def test_boundaries_are_accepted() -> None:
    """The shortest and longest documented lengths are valid."""
    parse_request(
        request_data(source_database="a" * 1024, target_database="b" * 128, task_name="c" * 128)
    )
    parse_request(request_data(source_database="abc", target_database="abc", task_name="abc"))


def test_missing_unknown_and_wrongly_typed_fields() -> None:
    """Missing, unknown and non-string fields each get their own error."""
    data: dict[str, object] = {**VALID, "extra": "x", "task_name": 123}
    del data["source_database"]
    with pytest.raises(RequestInvalid) as info:
        parse_request(data)
    rules = {e["field"]: e["rule"] for e in info.value.errors}
    assert rules == {
        "source_database": "required",
        "task_name": "must be a string",
        "extra": "unknown field",
    }


@pytest.mark.parametrize("data", [None, [], "text", 3])
def test_non_objects_are_refused(data: object) -> None:
    """A request that is not an object at all is refused, not crashed on."""
    with pytest.raises(RequestInvalid) as info:
        parse_request(data)
    assert _fields(info.value) == ["request"]


def test_model_is_strict_and_frozen() -> None:
    """Numbers are not coerced into names, and a validated request cannot be changed."""
    with pytest.raises(ValidationError):
        ReplicationRequest.model_validate({**VALID, "task_name": 12345})
    request = parse_request(VALID)
    with pytest.raises(ValidationError):
        request.task_name = "other"  # type: ignore[misc]


@given(
    task=st.text(alphabet=NAME, min_size=3, max_size=128),
    source=st.text(alphabet=NAME, min_size=3, max_size=1024),
    target=st.text(alphabet=NAME, min_size=3, max_size=128),
    project=st.text(alphabet=ALNUM, min_size=32, max_size=32),
    instance=st.text(alphabet=ALNUM, min_size=36, max_size=36),
)
def test_every_conforming_request_is_accepted(
    task: str, source: str, target: str, project: str, instance: str
) -> None:
    """Any values inside the documented alphabets and lengths validate unchanged."""
    request = parse_request(
        request_data(
            task_name=task,
            source_database=source,
            target_database=target,
            project_id=project,
            instance_id=instance,
        )
    )
    assert (request.task_name, request.source_database, request.target_database) == (
        task,
        source,
        target,
    )


@given(st.text(max_size=200))
def test_task_names_outside_the_rules_are_refused(name: str) -> None:
    """A task name is accepted exactly when it is 3-128 characters of [A-Za-z0-9_]."""
    conforming = 3 <= len(name) <= 128 and all(c in NAME for c in name)
    try:
        parse_request(request_data(task_name=name))
    except RequestInvalid as exc:
        assert not conforming
        assert _fields(exc) == ["task_name"]
    else:
        assert conforming


@given(
    st.dictionaries(st.text(max_size=20), st.one_of(st.text(max_size=40), st.integers(), st.none()))
)
def test_arbitrary_objects_never_crash_validation(data: dict[str, object]) -> None:
    """Whatever object arrives, validation either accepts it or raises RequestInvalid."""
    try:
        parse_request(data)
    except RequestInvalid as exc:
        assert exc.errors
        assert all(e["field"] and e["rule"] for e in exc.errors)


def test_fingerprint_identifies_the_request() -> None:
    """Equal requests share a fingerprint; any difference changes it."""
    a, b = parse_request(VALID), parse_request(dict(VALID))
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != parse_request(request_data(target_database="other")).fingerprint()
