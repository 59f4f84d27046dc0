"""Property-based: schemathesis drives the ingress from its own /openapi.json on a real Redis.

schemathesis 4's lazy pytest loader (``schemathesis.pytest.from_fixture``) reads pytest's
private ``Node._nodeid``, which pytest 9.2 no longer has. So each test loads the document from
the app it built on the test's fixtures (``from_asgi``) and runs the schema's own Hypothesis
strategy, positive and negative, through ``case.call_and_validate``: every built-in check
(no 5xx, status codes, headers, content types and bodies as documented, negative data refused,
auth not ignored).
"""

from __future__ import annotations

from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st

from htap_sync.common.settings import Settings
from htap_sync.producer.api import Producer
from htap_sync.producer.ingress import make_ingress
from tests.conftest import request_data

KEY = "schemathesis-key"
POSITIVE, NEGATIVE = schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE
# Negative data needs an input to break: the two routes without one get positive runs only.
RUNS = [
    ("/v1/replications", "POST", POSITIVE),
    ("/v1/replications", "POST", NEGATIVE),
    ("/v1/replications/{ticket}", "GET", POSITIVE),
    ("/v1/replications/{ticket}", "GET", NEGATIVE),
    ("/healthz", "GET", POSITIVE),
    ("/openapi.json", "GET", POSITIVE),
]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Auth on with one key; lists short enough, and long polls short enough, to run quickly."""
    return {"api_keys": KEY, "api_max_items": 5, "api_max_wait_s": 0.2}


@pytest.mark.parametrize(("path", "method", "mode"), RUNS)
def test_the_ingress_keeps_its_own_contract(
    settings: Settings,
    producer: Producer,
    path: str,
    method: str,
    mode: schemathesis.GenerationMode,
) -> None:
    """No 5xx, and every answer (status, headers, body) conforms to the published schema."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", make_ingress(settings, producer))
    operation = schema[path][method]
    cases = operation.as_strategy(generation_mode=mode)
    if "ticket" in path and mode is POSITIVE:
        # Random ticket ids are all unknown (404): look up real ones too, to check the 200s.
        seeded = [
            producer.enqueue(request_data(task_name="seeded_one")),
            producer.enqueue(request_data(task_name="seeded_two", source_node_id="n" * 36)),
        ]
        known = [operation.as_strategy(path_parameters={"ticket": r.ticket}) for r in seeded]
        cases = st.one_of(cases, *known)

    @hypothesis.given(case=cases)
    @hypothesis.settings(
        max_examples=50,
        deadline=5000,
        derandomize=True,  # the same cases on every run: a red CI run replays locally
        database=None,
        suppress_health_check=[hypothesis.HealthCheck.too_slow],
    )
    def run(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(headers={"X-API-Key": KEY})

    run()
