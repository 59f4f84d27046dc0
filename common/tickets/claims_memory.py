"""The lease protocol in this process: the steps of ``begin.lua``, ``update.lua``,
``pending.lua``, ``start.lua`` and ``finish.lua`` under one lock, for the worker's fast tests
(one contract test runs it and the Redis store alike)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from htap_sync.common.models import Attempt, TicketState
from htap_sync.common.tickets.claim_types import PROBE_S
from htap_sync.common.tickets.claims import (
    Claim,
    ClaimStore,
    FinishCall,
    Listed,
    NotReplicated,
    StartCall,
    Started,
)
from htap_sync.common.tickets.store import HISTORY_LIMIT, iso, with_route
from htap_sync.common.tickets.store_memory import MemoryTicketStore, as_text

_FINISHED = (TicketState.SUCCEEDED.value, TicketState.FAILED.value)
_UNFINISHED = (TicketState.QUEUED.value, TicketState.RUNNING.value, TicketState.RETRYING.value)


class MemoryClaimStore(MemoryTicketStore, ClaimStore):
    """The ticket store of one process with the worker's lease protocol (same arguments as
    MemoryTicketStore). It has no replicas: a write that must reach one is never acknowledged."""

    def begin(self, ticket: str, run: str, *, lease_s: float) -> Claim | str:
        """See :meth:`ClaimStore.begin`."""
        now = self._clock()
        holder = self.new_holder()
        with self._lock:
            found = self._live(ticket)
            if found is None:
                return "missing"
            if found.get("run") != run:
                return "stale"
            state = found["state"]
            if state in _FINISHED:
                return "done"
            dead_lease_until = 0.0
            if state == TicketState.RUNNING and float(found["lease_until"]) > now:
                if self._alive(found.get("holder", ""), now):
                    return "busy"
                dead_lease_until = float(found["lease_until"])
            found.update(
                state=TicketState.RUNNING.value,
                lease_until=as_text(now + lease_s),
                holder=holder,
                updated_at=iso(now),
            )
            self._delayed[f"{ticket}:{run}"] = now + PROBE_S
            return Claim(
                ticket=ticket,
                run=run,
                holder=holder,
                in_doubt=found["in_doubt"] == "1",
                attempts=int(found["attempts"]),
                fingerprint=found["request"],
                created_at=datetime.fromisoformat(found["created_at"]),
                prior=TicketState(state),
                dead_lease_until=dead_lease_until,
            )

    def start(
        self, call: StartCall, *, lease_s: float, replicas: int = 0, wait_s: float = 1.0
    ) -> Started | str:
        """See :meth:`ClaimStore.start`: its steps under the store's lock, atomic here too."""
        with self._lock:
            return super().start(call, lease_s=lease_s, replicas=replicas, wait_s=wait_s)

    def finish(self, call: FinishCall, *, replicas: int = 0, wait_s: float = 1.0) -> bool:
        """See :meth:`ClaimStore.finish`: under the store's lock."""
        with self._lock:
            return super().finish(call, replicas=replicas, wait_s=wait_s)

    def pending_request(self, ticket: str, run: str) -> tuple[str, dict[str, Any]] | None:
        """See :meth:`ClaimStore.pending_request`."""
        with self._lock:
            found = self._live(ticket)
            if found is None or found.get("run") != run or found["state"] not in _UNFINISHED:
                return None
            request: dict[str, Any] = json.loads(with_route(found["request"], found))
            state = found["state"]
            now = self._clock()
            lease_runs = float(found["lease_until"]) > now
            if state == TicketState.RUNNING and lease_runs and self._alive(found["holder"], now):
                return "held", request
            if state == TicketState.QUEUED and found.get("waiting") == "1":
                return "waiting", request
            return state, request

    def beat(self, node: str, ttl_s: float) -> None:
        """See :meth:`ClaimStore.beat`."""
        with self._lock:
            self._beats[node] = self._clock() + ttl_s

    def _alive(self, holder: str, now: float) -> bool:
        """As ``alive.lua``: a holder naming no process may be working; else its beat says."""
        node, dot, _ = holder.partition(".")
        return not dot or self._beats.get(node, float("-inf")) > now

    def _write(
        self,
        claim: Claim,
        *,
        attempts: int = 0,
        ttl_s: int = 0,
        failed: bool = False,
        due_at: float | None = None,
        note: Attempt | None = None,
        **fields: Any,
    ) -> bool:
        now = self._clock()
        with self._lock:
            found = self._live(claim.ticket)
            if found is None or found.get("run") != claim.run or found["state"] in _FINISHED:
                return False
            if claim.holder and found.get("holder") != claim.holder:
                return False
            found["attempts"] = str(int(found["attempts"]) + attempts)
            found.update({name: as_text(value) for name, value in fields.items()})
            found["updated_at"] = iso(now)
            if note is not None:
                history = self._history.setdefault(claim.ticket, [])
                history.append(note.model_dump_json())
                del history[:-HISTORY_LIMIT]
            member = f"{claim.ticket}:{claim.run}"
            if ttl_s > 0:
                self._delayed.pop(member, None)
                self._expires[claim.ticket] = now + ttl_s
            if failed:
                self._failed[claim.ticket] = now
            if due_at is not None:
                self._delayed[member] = due_at
            return True

    def _write_replicated(
        self, claim: Claim, *, replicas: int, wait_s: float, **fields: Any
    ) -> bool:
        # As on a Redis without replicas: the mark is written, and no replica acknowledges it.
        if not self._write(claim, attempts=1, **fields):
            return False
        raise NotReplicated(0, replicas)

    def connected_replicas(self) -> int:
        """Always 0: one process has no replicas."""
        return 0

    # Shared list snapshots, as ``list_*.lua`` keep them: instance -> (number, rows, until).

    def list_epoch(self, ref: str) -> int:
        """See :meth:`ClaimStore.list_epoch`."""
        with self._lock:
            return self._list_epochs.get(ref, 0)

    def claim_list(self, ref: str, *, hold_s: float) -> tuple[int, str] | None:
        """See :meth:`ClaimStore.claim_list`."""
        now = self._clock()
        with self._lock:
            held = self._listers.get(ref)
            if held is not None and held[1] > now:
                return None
            token = uuid.uuid4().hex
            self._listers[ref] = (token, now + hold_s)
            epoch = self._list_epochs[ref] = self._list_epochs.get(ref, 0) + 1
            return epoch, token

    def record_list(
        self, ref: str, epoch: int, token: str, rows: Mapping[str, str], *, ttl_s: float
    ) -> bool:
        """See :meth:`ClaimStore.record_list`."""
        with self._lock:
            self.release_list(ref, token)
            kept = self._snapshot(ref)
            if kept is not None and kept[0] >= epoch:
                return False
            self._snapshots[ref] = (epoch, dict(rows), self._clock() + max(1, int(ttl_s)))
            return True

    def release_list(self, ref: str, token: str) -> None:
        """See :meth:`ClaimStore.release_list`."""
        with self._lock:
            if ref in self._listers and self._listers[ref][0] == token:
                del self._listers[ref]

    def listed(self, ref: str, task_name: str, *, after: int) -> Listed | None:
        """See :meth:`ClaimStore.listed`."""
        with self._lock:
            kept = self._snapshot(ref)
            if kept is None or kept[0] <= after:
                return None
            return Listed(kept[0], kept[1].get(task_name))

    def _snapshot(self, ref: str) -> tuple[int, dict[str, str], float] | None:
        """The instance's snapshot unless expired (call with the lock held)."""
        kept = self._snapshots.get(ref)
        if kept is not None and kept[2] <= self._clock():
            del self._snapshots[ref]
            return None
        return kept

    def look_after(self, ticket: str) -> int:
        """See :meth:`ClaimStore.look_after`."""
        with self._lock:
            found = self._live(ticket)
            return int((found or {}).get("look_after") or 0)
