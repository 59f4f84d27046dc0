"""The values of the claim protocol (see :mod:`~htap_sync.common.tickets.claims`): a
delivery's claim, what its start did, the following a success
starts, and the calls of a batch's one-step start and finish."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from htap_sync.common.limits.admission import Admission, Limits, ScriptedLimits
from htap_sync.common.models import Attempt, TicketState

__all__ = ["Admission", "Limits", "ScriptedLimits"]  # the gate's, which claims pass

# Liveness of the processes that hold tickets. Each worker process beats every BEAT_EVERY_S
# (a key that lives ALIVE_TTL_S), and names itself in the holder of each claim it takes
# (``<node>.<id>``): a holder whose process stopped beating is dead, whatever its lease says.
# A running ticket's watchdog looks every PROBE_S: a live holder keeps it, a dead one's ticket
# is queued again (taken over at once; one in doubt still creates nothing before the dead
# holder's last call has ended: Settings.in_flight_s after its in-doubt mark).
BEAT_EVERY_S = 2.0
ALIVE_TTL_S = 10.0
PROBE_S = 10.0


class NotReplicated(Exception):
    """Fewer replicas than asked for acknowledged a write in time: do not act on it yet."""

    def __init__(self, acked: int, wanted: int) -> None:
        self.acked = acked
        self.wanted = wanted
        super().__init__(f"{acked} of {wanted} replicas acknowledged the write")


@dataclass(frozen=True)
class Following:
    """Start following a created task, written by ``finish`` with the task's success.

    A Redis store on the follow structures' client (``where``) writes them in its own step:
    ``entry`` under the ticket in ``tasks_key``, the instance ``ref``'s next round at
    ``first_at`` at the latest in ``due_key``, ``sync`` on the ticket. Any other store calls
    ``enroll`` first, then records the success.
    """

    enroll: Callable[[], None]
    where: object
    tasks_key: str
    due_key: str
    ref: str
    entry: str
    first_at: float
    sync: str


@dataclass(frozen=True)
class Started:
    """What ``start`` did with a claimed ticket (``claim`` as it was before the attempt).

    ``marked``: the attempt is counted and the ticket in doubt; send after ``wait_s``. Else
    the gate said wait (``rate``, ``breaker``: ``wait_s``, no attempt), or ``claimed``: only
    claimed (in doubt, another request, or a gate the store cannot ask).
    """

    claim: Claim
    verdict: Literal["marked", "claimed", "rate", "breaker"]
    wait_s: float = 0.0
    unreplicated: NotReplicated | None = None  # marked, but too few replicas hold the mark


@dataclass(frozen=True)
class Claim:
    """One delivery's hold on a ticket. Every write of that delivery goes through it."""

    ticket: str
    run: str
    holder: str = ""  # "" writes whoever holds the ticket (a message refused before claiming)
    in_doubt: bool = False
    attempts: int = 0
    fingerprint: str = ""
    created_at: datetime | None = None
    prior: TicketState = TicketState.QUEUED  # the state before this delivery took it
    # Taken over from a dead holder before its lease ended: when that lease would have ended
    # (epoch s; 0: not taken over). Set at the holder's in-doubt mark (or a later renewal) to
    # that moment + the lease, so the delivery knows when the holder's last create call has
    # ended (worker/delivery/ticket.py, Settings.in_flight_s).
    dead_lease_until: float = 0.0


@dataclass(frozen=True)
class StartCall:
    """One ticket of :meth:`ClaimStore.start_many`: the arguments of its ``start``."""

    ticket: str
    run: str
    fingerprint: str
    limits: Limits | None


@dataclass(frozen=True)
class FinishCall:
    """One ticket of :meth:`ClaimStore.finish_many`: the arguments of its ``finish``."""

    claim: Claim
    job_id: str | None
    note: Attempt | None
    limits: Limits | None
    follow: Following | None = None


@dataclass(frozen=True)
class Listed:
    """What an instance's shared list snapshot says of one task: the number its list call
    took (see ``ClaimStore.claim_list``) and the task's row as JSON (None: not listed)."""

    epoch: int
    row: str | None
