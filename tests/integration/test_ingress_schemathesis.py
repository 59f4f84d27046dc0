"""Property-based: schemathesis drives the ingress from its own /openapi.json on a real Redis.

schemathesis 4's lazy pytest loader (``schemathesis.pytest.from_fixture``) reads pytest's
private ``Node._nodeid``, which pytest 9.2 no longer has. So each test loads the document from
the app it built on the test's fixtures (``from_asgi``) and runs the schema's own Hypothesis
strategy, positive and negative, through ``case.call_and_validate``: every built-in check
(no 5xx, status codes, headers, content types and bodies as documented, negative data refused,
auth not ignored). A stateful run follows the document's links from answer to request, as
schemathesis's stateful phase does, and requires each link's value to be found in every answer
it is followed from.
"""

from __future__ import annotations

from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.core.result import Ok
from schemathesis.core.transforms import UNRESOLVABLE
from schemathesis.generation.stateful.state_machine import StepInput, StepOutput

from htap_sync.common.settings import Settings
from htap_sync.producer.api import Producer
from htap_sync.producer.ingress import make_ingress
from tests.conftest import request_data

KEY = "schemathesis-key"
POSITIVE, NEGATIVE = schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE
# Negative data needs an input to break: health, without one, gets a positive run only.
RUNS = [
    ("/v1/replications", "POST", POSITIVE),
    ("/v1/replications", "POST", NEGATIVE),
    ("/v1/replications/{ticket}", "GET", POSITIVE),
    ("/v1/replications/{ticket}", "GET", NEGATIVE),
    ("/healthz", "GET", POSITIVE),
    ("/v1/operations/pause", "POST", POSITIVE),
    ("/v1/operations/pause", "POST", NEGATIVE),
    ("/v1/operations/modify", "POST", POSITIVE),
    ("/v1/operations/modify", "POST", NEGATIVE),
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


def test_every_link_holds_in_a_stateful_run(settings: Settings, producer: Producer) -> None:
    """Chains of calls through the documented links (POST -> GET its ticket): every check on
    every answer, and each link's parameter found in the answer it follows (a list's 202 has
    no top-level ticket: the link reads the tickets every 2xx answer of a POST lists)."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", make_ingress(settings, producer))
    followed: list[str] = []
    unresolved: list[str] = []

    class Chains(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case[Any]) -> dict[str, Any]:
            return {"headers": {"X-API-Key": KEY}}

        def step(self, input: StepInput) -> StepOutput:
            transition = input.transition
            if transition is not None and not transition.is_inferred:
                for parameters in transition.parameters.values():
                    for name, extracted in parameters.items():
                        value = extracted.value
                        if isinstance(value, Ok) and value.ok() is not UNRESOLVABLE:
                            followed.append(f"{transition.id}: {name}")
                        else:
                            unresolved.append(f"{transition.id}: {name} ({extracted.definition})")
            output: StepOutput = super().step(input)
            return output

    Chains.run(
        settings=hypothesis.settings(
            max_examples=40,
            stateful_step_count=6,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
    )
    assert unresolved == []
    assert followed, "no documented link was followed"
