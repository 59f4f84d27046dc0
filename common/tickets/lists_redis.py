"""Shared list snapshots of operation tickets on Redis (see :class:`ClaimStore`'s
``claim_list``): one lister per instance at a time across the fleet, its call numbered from a
counter that never goes back, its rows kept as a hash with a TTL (``list_*.lua`` beside this
module)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import cast

import redis

from htap_sync.common.keys import LIST_EPOCH_FIELD, Keys
from htap_sync.common.scripts import script
from htap_sync.common.tickets.claim_types import Listed


class RedisListSnapshots:
    """The shared list snapshots part of :class:`RedisClaimStore` (a mixin: it needs the
    store's ``redis`` client and ``keys``)."""

    redis: redis.Redis
    keys: Keys

    def list_epoch(self, ref: str) -> int:
        """See :meth:`ClaimStore.list_epoch`."""
        return int(cast(str | None, self.redis.get(self.keys.list_epoch(ref))) or 0)

    def claim_list(self, ref: str, *, hold_s: float) -> tuple[int, str] | None:
        """See :meth:`ClaimStore.claim_list` (``list_claim.lua``)."""
        token = uuid.uuid4().hex
        keys = [self.keys.list_lister(ref), self.keys.list_epoch(ref)]
        epoch = script(self.redis, __name__, "list_claim.lua")(
            keys=keys, args=[token, max(1, int(hold_s * 1000))]
        )
        return None if epoch is None else (int(cast(int, epoch)), token)

    def record_list(
        self, ref: str, epoch: int, token: str, rows: Mapping[str, str], *, ttl_s: float
    ) -> bool:
        """See :meth:`ClaimStore.record_list` (``list_record.lua``)."""
        flat: list[str] = []
        for name, row in rows.items():
            if name != LIST_EPOCH_FIELD:
                flat += [name, row]
        keys = [self.keys.list_rows(ref), self.keys.list_lister(ref)]
        args: list[str | int] = [epoch, token, max(1, int(ttl_s)), LIST_EPOCH_FIELD, *flat]
        return bool(script(self.redis, __name__, "list_record.lua")(keys=keys, args=args))

    def release_list(self, ref: str, token: str) -> None:
        """See :meth:`ClaimStore.release_list` (``list_release.lua``)."""
        script(self.redis, __name__, "list_release.lua")(
            keys=[self.keys.list_lister(ref)], args=[token]
        )

    def listed(self, ref: str, task_name: str, *, after: int) -> Listed | None:
        """See :meth:`ClaimStore.listed`: one HMGET (the number and the row, together)."""
        epoch, row = cast(
            list[str | None],
            self.redis.hmget(self.keys.list_rows(ref), LIST_EPOCH_FIELD, task_name),
        )
        if epoch is None or int(epoch) <= after:
            return None
        return Listed(int(epoch), row)
