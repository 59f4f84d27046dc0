"""Lanes and fair shares on the fleet's token bucket: how far ahead each ask may reserve.

The bucket (:mod:`htap_sync.common.limits.bucket`) lets an ask reserve a token up to a *horizon*
ahead. Priority is a longer horizon: an ask that must go first may reserve further ahead
than the tokens the others reserved, and the others, whose horizon those reservations
exceed, are refused until the bucket has refilled past them. No queue of waiters is kept:
the same few fields of the bucket's hash decide every ask, on Redis in ``bucket.lua``.

* **Lanes.** An ``interactive`` ask reserves up to ``horizon_s`` (a few seconds), a ``bulk``
  ask only up to the bucket's own horizon: a waiting interactive ticket is served before
  any bulk ticket, behind at most the bulk reservations already made (one horizon).
* **Bulk's minimum share.** Grants of each lane are counted, decaying over
  ``SHARE_WINDOW_S``. While bulk asks are being refused and bulk's count is below
  ``min_share`` of the total, interactive reserves only within the bucket's own horizon and
  bulk past every reservation interactive made: bulk keeps that share under a flood.
* **Fair shares in bulk.** Each tenant keeps a virtual time that grows by ``1/weight`` per
  grant (weighted fair queuing). A tenant no further than the least of the others that
  asked within ``TENANT_ACTIVE_S`` reserves up to its lane's horizon; one ahead of them
  takes only a token already there. A tenant that stops asking stops counting at once for
  the others' reservations, and after ``TENANT_ACTIVE_S`` for their virtual times; one that
  comes back starts level with the others (no credit saved up while away).

Asks without a lane (``HTAP_SYNC_LANES=false``, or a call outside a ticket's start) take the
bucket's own horizon, first come first served, as before lanes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

SHARE_WINDOW_S = 10.0  # how fast the lanes' grant counts forget (an exponential's time)
TENANT_ACTIVE_S = 5.0  # a tenant that asked this recently has work
TENANT_FORGET_S = 60.0  # a tenant silent this long is dropped from the bucket's state
BULK_WAITING_S = 5.0  # a refused bulk ask says bulk is waiting, for this long


@dataclass(frozen=True)
class LaneAsk:
    """Who asks for a token: a lane, a tenant (bulk's fairness key) and the lane policy."""

    lane: Literal["interactive", "bulk"]
    tenant: str
    weight: float = 1.0
    min_share: float = 0.2
    horizon_s: float = 2.0  # how far ahead an ask served first may reserve

    def spec(self) -> str:
        """The ask as ``bucket.lua`` reads it (its ``ARGV[11]`` on ``acquire``)."""
        return f"{self.lane} {self.min_share!r} {self.horizon_s!r} {self.tenant} {self.weight!r}"


@dataclass(frozen=True)
class LaneState:
    """The lanes' part of a bucket's state."""

    interactive: float = 0.0  # grants, decaying over SHARE_WINDOW_S
    bulk: float = 0.0
    decayed: float = 0.0  # when the counts were last decayed
    bulk_waiting_until: float = 0.0
    # (tenant, virtual time, asked until): the bulk lane's tenants, by name.
    tenants: tuple[tuple[str, float, float], ...] = ()

    def tenant(self, name: str) -> tuple[float | None, float]:
        """A tenant's virtual time (None: unknown) and until when it counts as active."""
        for found, virtual, active in self.tenants:
            if found == name:
                return virtual, active
        return None, 0.0


def _decayed(lanes: LaneState, now: float) -> LaneState:
    factor = math.exp(-max(0.0, now - lanes.decayed) / SHARE_WINDOW_S)
    return replace(
        lanes,
        interactive=lanes.interactive * factor,
        bulk=lanes.bulk * factor,
        decayed=max(now, lanes.decayed),
    )


def _starved(lanes: LaneState, ask: LaneAsk, now: float) -> bool:
    """Bulk is waiting and has had less than its minimum share."""
    if ask.min_share <= 0 or now >= lanes.bulk_waiting_until:
        return False
    return lanes.bulk < ask.min_share * (lanes.interactive + lanes.bulk)


def horizon(
    lanes: LaneState, ask: LaneAsk, base_s: float, now: float
) -> tuple[LaneState, float, float]:
    """How far ahead this ask may reserve; with the decayed state and the tenant's virtual
    time (where it stands, level with the others when it comes back)."""
    lanes = _decayed(lanes, now)
    starved = _starved(lanes, ask, now)
    if ask.lane == "interactive":
        return lanes, base_s if starved else ask.horizon_s, 0.0
    # Starved, bulk reserves behind every reservation interactive may hold (its horizon),
    # and interactive only within the bucket's own: the next bulk ask is served, whenever
    # it comes (one lifted to the interactive queue's head, at bulk's share of the rate).
    lane_s = ask.horizon_s + base_s if starved else base_s
    virtual, active = lanes.tenant(ask.tenant)
    others = [v for name, v, until in lanes.tenants if name != ask.tenant and until > now]
    least = min(others) if others else None
    if virtual is None or active <= now:
        virtual = max(virtual or 0.0, least or 0.0)
    behind = least is None or virtual <= least
    return lanes, lane_s if behind else 0.0, virtual


def after(lanes: LaneState, ask: LaneAsk, virtual: float, now: float, granted: bool) -> LaneState:
    """Count a grant (or a refused bulk ask) into the lanes' state."""
    if ask.lane == "interactive":
        return replace(lanes, interactive=lanes.interactive + 1) if granted else lanes
    if granted:
        lanes = replace(lanes, bulk=lanes.bulk + 1)
        virtual += 1 / ask.weight
    else:
        lanes = replace(lanes, bulk_waiting_until=now + BULK_WAITING_S)
    tenants = [
        entry
        for entry in lanes.tenants
        if entry[0] != ask.tenant and entry[2] > now - TENANT_FORGET_S
    ]
    tenants.append((ask.tenant, virtual, now + TENANT_ACTIVE_S))
    return replace(lanes, tenants=tuple(sorted(tenants)))
