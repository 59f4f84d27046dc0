"""Lanes and fairness keys: which queue a ticket waits in, and whose share of the rate it uses.

Two lanes: ``interactive`` (a service's single request, the default of ``enqueue``) and
``bulk`` (migrations: ``enqueue_many``, bulk files, the ingress's list POST). Each lane is a
Celery queue of its own, which every worker consumes, interactive first; on the fleet's
token bucket an interactive ticket is served before any bulk ticket, while bulk keeps
``HTAP_SYNC_RATE_BULK_MIN_SHARE`` of the rate. Within bulk, the rate is shared between the
*tenants* that have work, weighted by ``HTAP_SYNC_TENANT_WEIGHTS``; a ticket's tenant
defaults to its project. A tenant is never sent to the cloud and is no part of a request's
identity.

With ``HTAP_SYNC_LANES=false`` every ticket waits in the one queue ``HTAP_SYNC_QUEUE`` and
takes tokens first come first served (as before lanes).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from htap_sync.common.errors import RequestInvalid
from htap_sync.common.keys import Keys
from htap_sync.common.models import RULES
from htap_sync.common.settings import Settings

Lane = Literal["interactive", "bulk"]
LANES: tuple[Lane, ...] = ("interactive", "bulk")  # the order workers consume them in
TENANT_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
Tenant = Annotated[str, StringConstraints(pattern=TENANT_PATTERN)]
# Metrics label tenants by name only when they are named in the weights; the others are
# "other" (a label's values must stay few).
OTHER_TENANT = "other"


def queue_name(settings: Settings, lane: Lane | None) -> str:
    """The Celery queue of a lane: ``HTAP_SYNC_QUEUE`` for interactive (and for every ticket
    without lanes), ``HTAP_SYNC_QUEUE`` + ``.bulk`` for bulk."""
    if not settings.lanes or lane != "bulk":
        return settings.queue
    return f"{settings.queue}.bulk"


def queue_names(settings: Settings) -> list[str]:
    """The queues a worker consumes, in the order it takes messages from them."""
    return list(dict.fromkeys(queue_name(settings, lane) for lane in LANES))


def lane_of(settings: Settings, request_lane: str | None) -> Lane | None:
    """The lane a ticket's gate serves it in: None without lanes (first come first served),
    else the request's lane (a request without one, from before lanes, is interactive)."""
    if not settings.lanes:
        return None
    return "bulk" if request_lane == "bulk" else "interactive"


def tenant_weights(settings: Settings) -> dict[str, float]:
    """``HTAP_SYNC_TENANT_WEIGHTS`` as a mapping (``team_a=2,team_b=1``); empty when unset."""
    text = settings.rate.tenant_weights
    weights: dict[str, float] = {}
    for part in filter(None, text.split(",")):
        name, _, value = part.partition("=")
        weights[name] = float(value)
    return weights


def tenant_label(named: Collection[str], tenant: str | None) -> str:
    """A tenant as a metrics label: its name when the weights name it (``named``), else
    ``other`` (a label must have few values)."""
    return tenant if tenant is not None and tenant in named else OTHER_TENANT


def queue_keys(settings: Settings) -> dict[Lane, str]:
    """The broker list of each lane (one and the same list without lanes)."""
    return {lane: Keys(settings.key_prefix).queue(queue_name(settings, lane)) for lane in LANES}


class _Routing(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    lane: Lane | None = None
    tenant: Tenant | None = None


def check_routing(lane: str | None, tenant: str | None) -> None:
    """Check a lane and a tenant given beside a request (CLI options, keyword arguments).

    Raises:
        RequestInvalid: naming the field at fault.
    """
    try:
        _Routing.model_validate({"lane": lane, "tenant": tenant})
    except ValidationError as exc:
        fields = [str(error["loc"][0]) for error in exc.errors()]
        raise RequestInvalid(
            [{"field": f, "rule": RULES[f], "message": f"{f}: {RULES[f]}"} for f in fields]
        ) from None
