"""The lease protocol on Redis: each claim and write is one Lua script (``begin.lua``,
``update.lua``, ``pending.lua`` beside this module), so every worker on every host shares it.

The common path of a delivery is two scripts: ``start.lua`` (claim, rate limit, breaker,
in-doubt mark) and ``finish.lua`` (success, breaker). They run ``begin.lua``, ``update.lua``
and the worker's ``bucket.lua``/``breaker.lua`` as functions (composed at load time), so each
of those stays the one definition of its steps. A batch's common path is two scripts too,
``start_many.lua`` and ``finish_many.lua``, running ``start`` and ``finish`` for each ticket.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import redis
from redis.commands.core import Script

from htap_sync.common.limits import breaker, bucket
from htap_sync.common.models import Attempt, TicketState
from htap_sync.common.scripts import script
from htap_sync.common.tickets import layouts
from htap_sync.common.tickets.claim_types import PROBE_S
from htap_sync.common.tickets.claims import (
    Claim,
    ClaimStore,
    FinishCall,
    Following,
    Limits,
    NotReplicated,
    ScriptedLimits,
    StartCall,
    Started,
    succeeded_fields,
)
from htap_sync.common.tickets.lists_redis import RedisListSnapshots
from htap_sync.common.tickets.store import HISTORY_LIMIT, TicketStore, iso, with_route

_BLANK_BUCKET = [""] * bucket.ARGC  # bucket.lua's ARGV when start.lua does not check the gate
_BLANK_BREAKER = [""] * breaker.ARGC


class RedisClaimStore(RedisListSnapshots, TicketStore, ClaimStore):
    """The ticket store with the worker's lease protocol (same arguments as TicketStore)."""

    def __init__(self, client: redis.Redis, **options: Any) -> None:
        super().__init__(client, **options)
        limit = {"HISTORY_LIMIT": str(HISTORY_LIMIT), **layouts.constants()}
        self._update = script(client, __name__, "update.lua", constants=limit)
        # The scripts composed of others, each with the scripts it runs (see scripts.py); the
        # gate's come from the modules that own them.
        parts = {name: (__name__, f"{name}.lua") for name in ("alive", "begin", "update", "start")}
        parts |= {"bucket": (bucket.__name__, "bucket.lua")}
        parts |= {"breaker": (breaker.__name__, "breaker.lua"), "finish": (__name__, "finish.lua")}

        def composed(name: str, *functions: str) -> Script:
            calls = {function: parts[function] for function in functions}
            return script(client, __name__, name, constants=limit, functions=calls)

        self._begin = composed("begin.lua", "alive")
        self._pending = composed("pending.lua", "alive")
        self._start = composed("start.lua", "alive", "begin", "bucket", "breaker", "update")
        self._finish = composed("finish.lua", "breaker", "update")
        self._start_many = composed(
            "start_many.lua", "alive", "begin", "bucket", "breaker", "update", "start"
        )
        self._finish_many = composed("finish_many.lua", "breaker", "update", "finish")

    def _begin_args(self, ticket: str, run: str, lease_s: float) -> tuple[float, str, list[Any]]:
        """``(now, holder, ARGV of begin.lua)`` for a new claim."""
        now = self._clock()
        holder = self.new_holder()
        watchdog = repr(now + PROBE_S)  # the mover looks whether the holder still lives
        return now, holder, [run, now, now + lease_s, iso(now), holder, watchdog, ticket]

    def begin(self, ticket: str, run: str, *, lease_s: float) -> Claim | str:
        """See :meth:`ClaimStore.begin`."""
        _, holder, args = self._begin_args(ticket, run, lease_s)
        result = cast(list[str], self._begin(keys=[self.key(ticket), self.delayed_key], args=args))
        return _claim(ticket, run, holder, result)

    def start(
        self, call: StartCall, *, lease_s: float, replicas: int = 0, wait_s: float = 1.0
    ) -> Started | str:
        """See :meth:`ClaimStore.start`: one ``start.lua`` (and its ``WAIT``, one round trip)."""
        limits = call.limits
        if limits is not None and not limits.free and not self._runs(limits):
            # The gate's state is not in this Redis: step by step.
            return super().start(call, lease_s=lease_s, replicas=replicas, wait_s=wait_s)
        holder, gate, own, mark = self._start_parts(call, lease_s)
        ticket = call.ticket
        keys = [self.key(ticket), self.delayed_key, self.failed_key, self.history_key(ticket)]
        scripted = limits.scripted if limits is not None else None
        args = [*own, gate, limits.max_sleep_s if limits else 0]
        if scripted is not None:
            keys += [scripted.bucket_key, scripted.breaker_key]
            args += [*scripted.acquire_args, *scripted.allow_args]
        else:
            args += [*_BLANK_BUCKET, *_BLANK_BREAKER]
        result, acked = self._run(self._start, keys, [*args, *mark], replicas, wait_s)
        return _started(call, holder, cast(list[str], result), acked, replicas)

    def _start_parts(
        self, call: StartCall, lease_s: float
    ) -> tuple[str, str, list[Any], list[Any]]:
        """``(holder, gate, ARGV 1-8, ARGV 28-)`` of ``start.lua`` for one ticket: the gate's
        mode, begin's arguments and the fingerprint, update's (the mark)."""
        now, holder, begin_args = self._begin_args(call.ticket, call.run, lease_s)
        claim = Claim(call.ticket, call.run, holder)
        _, mark = self._update_call(claim, attempts=1, in_doubt=1, lease_until=now + lease_s)
        return holder, _gate(call.limits), [*begin_args, call.fingerprint], mark

    def start_many(
        self, calls: Sequence[StartCall], *, lease_s: float, replicas: int = 0, wait_s: float = 1.0
    ) -> list[Started | str]:
        """See :meth:`ClaimStore.start_many`: one ``start_many.lua`` (and its ``WAIT``); what
        the tickets' starts share is sent once."""
        shared = _shared_limits([call.limits for call in calls], self.redis)
        if shared is None:
            return super().start_many(calls, lease_s=lease_s, replicas=replicas, wait_s=wait_s)
        if not calls:
            return []
        scripted, max_sleep_s = shared
        breaker_key = scripted.breaker_key if scripted else self.delayed_key  # else unused
        keys = [self.delayed_key, self.failed_key, breaker_key]
        args: list[Any] = [max_sleep_s]
        args += [*scripted.acquire_args, *scripted.allow_args] if scripted else []
        args += [] if scripted else [*_BLANK_BUCKET, *_BLANK_BREAKER]
        now, _, begin = self._begin_args("", "", lease_s)  # run, holder, id: each ticket's
        _, mark = self._update_call(
            Claim("", ""), attempts=1, in_doubt=1, lease_until=now + lease_s
        )
        args += [len(begin), *begin, len(mark), *mark]
        holders = []
        for call in calls:
            holder = self.new_holder()
            ticket_key = self.key(call.ticket)
            keys += [ticket_key, self.history_key(call.ticket)]
            limits = call.limits.scripted if call.limits is not None else None
            keys.append(limits.bucket_key if limits is not None else ticket_key)
            args += [_gate(call.limits), call.run, holder, call.ticket, call.fingerprint]
            holders.append(holder)
        results, acked = self._run(self._start_many, keys, args, replicas, wait_s)
        return [
            _started(call, holder, cast(list[str], result), acked, replicas)
            for call, holder, result in zip(calls, holders, results, strict=True)
        ]

    def finish(self, call: FinishCall, *, replicas: int = 0, wait_s: float = 1.0) -> bool:
        """See :meth:`ClaimStore.finish`: one ``finish.lua`` (and its ``WAIT``)."""
        claim, limits, follow = call.claim, call.limits, call.follow
        unscripted = limits is not None and not limits.free and not self._runs(limits)
        if unscripted or (follow is not None and follow.where is not self.redis):
            return super().finish(call, replicas=replicas, wait_s=wait_s)
        scripted = limits.scripted if limits is not None else None
        ticket_key = self.key(claim.ticket)  # stands in for a key the call does not use
        keys = [ticket_key, self.failed_key, self.history_key(claim.ticket), self.delayed_key]
        keys += [scripted.breaker_key if scripted else ticket_key, *self._follow_keys(call)]
        args: list[Any] = ["record", *scripted.ok_args] if scripted else ["", *_BLANK_BREAKER]
        args += self._finish_parts(call)
        done, acked = self._run(self._finish, keys, args, replicas, wait_s)
        _replicated(acked, replicas)
        return done is not None

    def _follow_keys(self, call: FinishCall) -> list[str]:
        """``finish.lua``'s followed-tasks and rounds keys (the ticket's when not following)."""
        if call.follow is None:
            return [self.key(call.claim.ticket)] * 2
        return [call.follow.tasks_key, call.follow.due_key]

    def _finish_parts(self, call: FinishCall) -> list[Any]:
        """``finish.lua``'s ARGV from 8 on: the follow flag and entry, the ticket, update's."""
        fields = succeeded_fields(call.job_id, reconciled=False)
        _, update_args = self._update_call(call.claim, ttl_s=self._ttl_s, note=call.note, **fields)
        return [*_follow_args(call.follow), call.claim.ticket, *update_args]

    def finish_many(
        self, calls: Sequence[FinishCall], *, replicas: int = 0, wait_s: float = 1.0
    ) -> list[bool]:
        """See :meth:`ClaimStore.finish_many`: one ``finish_many.lua`` (and its ``WAIT``);
        what the tickets' finishes share is sent once."""
        shared = _shared_limits([call.limits for call in calls], self.redis)
        elsewhere = any(c.follow is not None and c.follow.where is not self.redis for c in calls)
        if shared is None or elsewhere or any(not c.job_id for c in calls):
            return super().finish_many(calls, replicas=replicas, wait_s=wait_s)
        if not calls:
            return []
        scripted = shared[0]
        breaker_key = scripted.breaker_key if scripted else self.delayed_key  # else unused
        keys = [self.failed_key, self.delayed_key, breaker_key]
        args: list[Any] = ["record", *scripted.ok_args] if scripted else ["", *_BLANK_BREAKER]
        fields = succeeded_fields("job id", reconciled=False)  # each ticket's job id in it
        _, update = self._update_call(Claim("", ""), ttl_s=self._ttl_s, **fields)
        job_at = update.index("job_id", 9) + 2  # the value after the name, counted from 1
        args += [job_at, len(update), *update]
        for call in calls:
            claim = call.claim
            keys += [self.key(claim.ticket), self.history_key(claim.ticket)]
            keys += self._follow_keys(call)
            note = call.note.model_dump_json() if call.note else ""
            args += [claim.run, claim.holder, claim.ticket, note, call.job_id]
            args += _follow_args(call.follow)
        done, acked = self._run(self._finish_many, keys, args, replicas, wait_s)
        _replicated(acked, replicas)
        return [bool(one) for one in cast(list[int], done)]

    def _runs(self, limits: Limits) -> bool:
        """Whether this store's scripts can run the gate's checks (their state is here)."""
        return limits.scripted is not None and limits.scripted.where is self.redis

    def look_after(self, ticket: str) -> int:
        """See :meth:`ClaimStore.look_after`."""
        return int(cast(str | None, self.redis.hget(self.key(ticket), "look_after")) or 0)

    def pending_request(self, ticket: str, run: str) -> tuple[str, dict[str, Any]] | None:
        """See :meth:`ClaimStore.pending_request`."""
        found = cast(
            list[str] | None, self._pending(keys=[self.key(ticket)], args=[run, self._clock()])
        )
        if not found:
            return None
        route = {"route": found[2]} if len(found) > 2 else {}
        return found[0], cast(dict[str, Any], json.loads(with_route(found[1], route)))

    def _update_call(
        self,
        claim: Claim,
        *,
        attempts: int = 0,
        ttl_s: int = 0,
        failed: bool = False,
        due_at: float | None = None,
        note: Attempt | None = None,
        **fields: Any,
    ) -> tuple[list[str], list[Any]]:
        """The ``KEYS`` and ``ARGV`` of ``update.lua`` for one write (see :meth:`_write`)."""
        now = self._clock()
        fields["updated_at"] = iso(now)
        flat: list[Any] = []
        for name, value in fields.items():
            flat += [name, value]
        keys = [
            self.key(claim.ticket),
            self.failed_key,
            self.history_key(claim.ticket),
            self.delayed_key,
        ]
        args = [
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
        ]
        return keys, args

    def _write(self, claim: Claim, **options: Any) -> bool:
        keys, args = self._update_call(claim, **options)
        return self._update(keys=keys, args=args) is not None

    def _write_replicated(
        self, claim: Claim, *, replicas: int, wait_s: float, **fields: Any
    ) -> bool:
        keys, args = self._update_call(claim, attempts=1, **fields)
        done, acked = self._run(self._update, keys, args, replicas, wait_s)
        if done is None:
            return False
        _replicated(acked, replicas)
        return True

    def _run(
        self, code: Script, keys: list[str], args: list[Any], replicas: int, wait_s: float
    ) -> tuple[Any, int | None]:
        """Run a script; with ``replicas`` > 0, then ``WAIT`` on the same connection (it counts
        that connection's writes), in one round trip. Returns its answer and the replicas
        that acknowledged (None without a WAIT)."""
        if replicas <= 0:
            return code(keys=keys, args=args), None
        for _ in range(2):
            pipe = self.redis.pipeline(transaction=False)
            # EVALSHA itself, not the Script: a pipeline of Scripts asks SCRIPT EXISTS first.
            pipe.evalsha(code.sha, len(keys), *keys, *args)
            pipe.execute_command("WAIT", replicas, max(1, int(wait_s * 1000)))  # type: ignore[no-untyped-call]
            try:
                answer, acked = pipe.execute()
            except redis.exceptions.NoScriptError:
                code.sha = self.redis.script_load(code.script)  # a restarted or new master
                continue
            return answer, int(acked)
        raise redis.exceptions.NoScriptError("the script could not be loaded")

    def beat(self, node: str, ttl_s: float) -> None:
        """See :meth:`ClaimStore.beat`."""
        # The value says until when (read against the reader's clock, as leases are); the
        # key's own expiry only clears it away once it can tell nothing more.
        until = repr(self._clock() + ttl_s)
        self.redis.set(self.keys.alive(node), until, px=int((ttl_s + 60) * 1000))

    def connected_replicas(self) -> int:
        """How many replicas the Redis this store writes to has right now."""
        info = self.redis.info("replication")
        return int(info.get("connected_slaves", 0))


def _replicated(acked: int | None, replicas: int) -> None:
    """Raise NotReplicated when a ``WAIT`` saw fewer than ``replicas`` acknowledge."""
    if acked is not None and acked < replicas:
        raise NotReplicated(acked, replicas)


def _gate(limits: Limits | None) -> str:
    """``start.lua``'s gate mode for a ticket's limits: check them, nothing to check, or
    none the store can ask (claim only)."""
    return "claim" if limits is None else ("go" if limits.scripted is None else "check")


def _follow_args(follow: Following | None) -> list[Any]:
    """``finish.lua``'s ARGV 8-12: the follow flag, entry, first round, instance, sync."""
    if follow is None:
        return ["", "", "", "", ""]
    return ["follow", follow.entry, repr(follow.first_at), follow.ref, follow.sync]


def _started(
    call: StartCall, holder: str, result: list[str], acked: int | None, replicas: int
) -> Started | str:
    """What ``start.lua``'s answer says of one ticket (``acked``: replicas after ``WAIT``)."""
    found = _claim(call.ticket, call.run, holder, result)
    if not isinstance(found, Claim):
        return found
    verdict, wait = result[6], float(result[7])
    if verdict == "marked" and acked is not None and acked < replicas:
        return Started(found, "marked", wait, NotReplicated(acked, replicas))
    return Started(found, cast(Any, verdict), wait)


def _shared_limits(
    all_limits: Sequence[Limits | None], where: redis.Redis
) -> tuple[ScriptedLimits | None, float] | None:
    """The gate checks a batch's scripts can run for every ticket, and the longest sleep:
    None when some ticket's gate lives elsewhere, or the tickets' gates differ (then the
    batch goes ticket by ticket)."""
    if len({limits is None or limits.free for limits in all_limits}) > 1:
        return None  # some checked, some not: finish_many tells the breaker for all or none
    scripted: ScriptedLimits | None = None
    max_sleep_s = 0.0
    for limits in all_limits:
        if limits is None or limits.free:
            continue
        mine = limits.scripted
        if mine is None or mine.where is not where:
            return None
        if scripted is None:
            scripted, max_sleep_s = mine, limits.max_sleep_s
        elif (mine.acquire_args, mine.allow_args, mine.breaker_key, limits.max_sleep_s) != (
            scripted.acquire_args,
            scripted.allow_args,
            scripted.breaker_key,
            max_sleep_s,
        ):
            return None
    return scripted, max_sleep_s


def _claim(ticket: str, run: str, holder: str, result: list[str]) -> Claim | str:
    """The claim of begin.lua's answer (start.lua's begins with it), or why there is none."""
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
        dead_lease_until=float(result[8]) if len(result) > 8 and result[8] else 0.0,
    )
