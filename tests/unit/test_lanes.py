"""Lanes and tenants at the edge: routing, not identity; the settings; the queues."""

from __future__ import annotations

import json

import pytest

from htap_sync.common.errors import RequestInvalid, SettingsError
from htap_sync.common.fair_feed import submit_queue, tenant_queue
from htap_sync.common.lanes import (
    check_routing,
    lane_of,
    queue_names,
    tenant_label,
    tenant_weights,
)
from htap_sync.common.models import parse_request
from htap_sync.common.settings import load_settings
from htap_sync.common.tickets.store import with_route
from htap_sync.worker import metrics
from tests.conftest import request_data

LANE_DEPTH = "htap_sync_lane_queue_depth"
TENANT_WAITING = "htap_sync_tenant_waiting_messages"


def test_lane_and_tenant_are_no_part_of_the_identity_nor_the_body() -> None:
    """The same request in another lane or of another tenant has the same fingerprint; neither
    field is sent to the API; both are kept as the route."""
    plain = parse_request(request_data())
    routed = parse_request({**request_data(), "lane": "bulk", "tenant": "team_a"})
    assert routed.fingerprint() == plain.fingerprint()
    assert routed.body() == plain.body()
    assert routed.route() == '{"lane":"bulk","tenant":"team_a"}'
    assert plain.route() == ""
    stored = with_route(plain.fingerprint(), {"route": routed.route()})
    again = parse_request(json.loads(stored))
    assert (again.lane, again.tenant) == ("bulk", "team_a")


def test_a_request_keeps_its_own_routing() -> None:
    """Defaults fill what a request does not name; what it names stays."""
    own = parse_request({**request_data(), "lane": "bulk"})
    assert own.routed("interactive", "t").lane == "bulk"
    assert own.routed("interactive", "t").tenant == "t"


@pytest.mark.parametrize(
    ("lane", "tenant", "field"),
    [("fast", None, "lane"), (None, "a b", "tenant"), (None, "x" * 65, "tenant")],
)
def test_bad_routing_names_its_field(lane: str | None, tenant: str | None, field: str) -> None:
    """A lane other than the two, or a tenant that is not a short name, is refused by name."""
    with pytest.raises(RequestInvalid) as caught:
        check_routing(lane, tenant)
    assert [e["field"] for e in caught.value.errors] == [field]


def test_tenant_weights_are_checked_at_start() -> None:
    """HTAP_SYNC_TENANT_WEIGHTS: name=weight pairs, each weight above 0."""
    assert load_settings({"tenant_weights": "a=2,b=0.5"}, env_file=None).rate.tenant_weights
    for bad in ("a", "a=0", "a=-1", "a=1,,b=2"):
        with pytest.raises((SettingsError, ValueError)):
            load_settings({"tenant_weights": bad}, env_file=None)


def test_queues_of_the_lanes() -> None:
    """Interactive first, then bulk; a tenant's bulk messages wait in its own queue; without
    lanes everything is one queue, first come first served."""
    on = load_settings({"queue": "q"}, env_file=None)
    assert queue_names(on) == ["q", "q.bulk"]
    assert tenant_queue(on, "team_a") == "q.bulk.team_a"
    assert submit_queue(on, "bulk", "team_a").endswith(":q.bulk.team_a")
    assert submit_queue(on, "interactive", "team_a").endswith(":q")
    assert lane_of(on, None) == "interactive"
    off = load_settings({"queue": "q", "lanes": False}, env_file=None)
    assert queue_names(off) == ["q"]
    assert submit_queue(off, "bulk", "team_a").endswith(":q")
    assert lane_of(off, "bulk") is None


def test_tenant_labels_stay_few() -> None:
    """The tenants' waiting gauge names a tenant only when the weights do; the others are
    summed under ``other``."""
    settings = load_settings({"tenant_weights": "team_a=2"}, env_file=None)
    lanes = {
        "queues": {"interactive": 0, "bulk": 1},
        "tenants_waiting": {"team_a": 3, "x": 4, "y": 5},
        "tenants_named": sorted(tenant_weights(settings)),
    }
    families = {name: metrics._family(name) for name in (LANE_DEPTH, TENANT_WAITING)}
    metrics._lane_metrics(families, lanes)
    waiting = {s.labels["tenant"]: s.value for s in families[TENANT_WAITING].samples}
    assert waiting == {"team_a": 3, "other": 9}
    depth = {s.labels["lane"]: s.value for s in families[LANE_DEPTH].samples}
    assert depth == {"interactive": 0, "bulk": 13}
    assert tenant_label(["team_a"], None) == "other"
