"""The lease protocol on Redis: each claim and write is one Lua script (``begin.lua``,
``update.lua``, ``pending.lua`` beside this module), so every worker on every host shares it."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any, cast

import redis

from htap_sync.common.lease import Claim, LeaseStore, NotReplicated
from htap_sync.common.models import Attempt, TicketState
from htap_sync.common.scripts import script
from htap_sync.common.store import HISTORY_LIMIT, TicketStore, iso

_PACKAGE = "htap_sync.common"


class RedisLeaseStore(TicketStore, LeaseStore):
    """The ticket store with the worker's lease protocol (same arguments as TicketStore)."""

    def __init__(self, client: redis.Redis, **options: Any) -> None:
        super().__init__(client, **options)
        self._begin = script(client, _PACKAGE, "begin.lua")
        limit = {"HISTORY_LIMIT": str(HISTORY_LIMIT)}
        self._update = script(client, _PACKAGE, "update.lua", constants=limit)
        self._pending = script(client, _PACKAGE, "pending.lua")

    def begin(self, ticket: str, run: str, *, lease_s: float) -> Claim | str:
        """See :meth:`LeaseStore.begin`."""
        now = self._clock()
        holder = uuid.uuid4().hex
        result = cast(
            list[str],
            self._begin(
                keys=[self.key(ticket), self.delayed_key],
                args=[
                    run,
                    now,
                    now + lease_s,
                    iso(now),
                    holder,
                    repr(now + lease_s + self._watch_s),
                    ticket,
                ],
            ),
        )
        if result[0] != "ok":
            return result[0]
        return Claim(
            ticket=ticket,
            run=run,
            holder=holder,
            in_doubt=result[1] == "1",
            attempts=int(result[2]),
            fingerprint=result[3],
            created_at=datetime.fromisoformat(result[4]),
            prior=TicketState(result[5]),
        )

    def pending_request(self, ticket: str, run: str) -> tuple[str, dict[str, Any]] | None:
        """See :meth:`LeaseStore.pending_request`."""
        found = cast(list[str] | None, self._pending(keys=[self.key(ticket)], args=[run]))
        if not found:
            return None
        return found[0], cast(dict[str, Any], json.loads(found[1]))

    def _write(
        self,
        claim: Claim,
        *,
        attempts: int = 0,
        ttl_s: int = 0,
        failed: bool = False,
        due_at: float | None = None,
        note: Attempt | None = None,
        client: redis.client.Pipeline | None = None,
        **fields: Any,
    ) -> bool:
        now = self._clock()
        fields["updated_at"] = iso(now)
        flat: list[Any] = []
        for name, value in fields.items():
            flat += [name, value]
        done = self._update(
            keys=[
                self.key(claim.ticket),
                self.failed_key,
                self.history_key(claim.ticket),
                self.delayed_key,
            ],
            args=[
                claim.run,
                claim.holder,
                attempts,
                ttl_s,
                now,
                int(failed),
                "" if due_at is None else repr(due_at),
                note.model_dump_json() if note else "",
                claim.ticket,
                *flat,
            ],
            client=client,
        )
        return done is not None

    def _write_replicated(
        self, claim: Claim, *, replicas: int, wait_s: float, **fields: Any
    ) -> bool:
        # WAIT counts the writes of its own connection: one pipeline carries both.
        pipe = self.redis.pipeline(transaction=False)
        self._write(claim, attempts=1, client=pipe, **fields)
        pipe.execute_command("WAIT", replicas, max(1, int(wait_s * 1000)))  # type: ignore[no-untyped-call]
        done, acked = pipe.execute()
        if done is None:
            return False
        if int(acked) < replicas:
            raise NotReplicated(int(acked), replicas)
        return True

    def connected_replicas(self) -> int:
        """How many replicas the Redis this store writes to has right now."""
        info = self.redis.info("replication")
        return int(info.get("connected_slaves", 0))
