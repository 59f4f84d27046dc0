"""The gate of a ticket's attempt on its lane's terms (:mod:`htap_sync.common.lanes`).

A ticket whose start met a short wait of the rate sleeps it in its worker and asks again:
an interactive one, on its lane's place in the bucket. A bulk ticket refused a token never
sleeps in a worker's slot (an interactive message may be waiting for one): it goes back to
the durable delayed set, and asks again when the bucket said; a reserved token (at most a
horizon away) is slept as before.
"""

from __future__ import annotations

from htap_sync.common.lanes import lane_of
from htap_sync.common.limits.gate import Api, CallGate, MustWait
from htap_sync.common.models import ReplicationRequest
from htap_sync.common.settings import Settings
from htap_sync.common.tickets.claims import Limits, Started


def _bulk(request: ReplicationRequest, settings: Settings) -> bool:
    return lane_of(settings, request.lane) == "bulk"


def wait_first(
    started: Started, limits: Limits | None, request: ReplicationRequest, settings: Settings
) -> None:
    """Raise :class:`MustWait` when the start's gate said wait and the ticket may not sleep
    it here (the breaker, a long wait, or a bulk ticket)."""
    if started.verdict not in ("rate", "breaker"):
        return
    short = limits is not None and started.wait_s <= limits.max_sleep_s
    if started.verdict == "breaker" or not short or _bulk(request, settings):
        raise MustWait(started.wait_s, "breaker" if started.verdict == "breaker" else "rate")


def pass_gate(
    request: ReplicationRequest,
    gate: CallGate,
    limits: Limits | None,
    api: Api,
    settings: Settings,
) -> None:
    """Return when the attempt may go out (after a short sleep, perhaps), asking the bucket
    in the ticket's lane when lanes are on (``limits`` of its start).

    Raises:
        MustWait: defer the ticket (a long wait, the breaker, or a bulk ticket refused).
    """
    if limits is None or limits.free or lane_of(settings, request.lane) is None:
        gate.before_call(request.project_id, api)
        return
    bulk = _bulk(request, settings)
    while True:
        admitted = limits.admit()
        if not admitted.reason:
            if admitted.sleep_s > 0:
                limits.sleep(admitted.sleep_s)
            return
        if admitted.reason == "breaker" or bulk or admitted.wait_s > limits.max_sleep_s:
            raise MustWait(admitted.wait_s, admitted.reason)
        limits.sleep(admitted.wait_s)  # until a token is due: never a busy loop
