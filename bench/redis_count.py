"""Count the Redis commands and round trips of a whole process, from inside it.

``python -m bench.redis_count OUT.json -- -m htap_sync worker ...`` runs the module after
``-m`` as ``python -m`` would, with every redis-py connection of the process counted (kombu's
broker channels, Celery's result backend and the product's own clients alike), and rewrites
``OUT.json`` every 0.1 s with ``{"seq": n, "round_trips": r, "commands": {"EVALSHA": c, ...}}``.

A round trip is one write of a client to its socket (``send_packed_command``) that is then
answered: one command alone, or a whole pipeline or MULTI/EXEC block sent at once. Commands
are the RESP arrays inside those writes, named by their first word, so a pipeline of 3 counts
3 commands and 1 round trip. Commands that Lua scripts run inside Redis are not client
commands and are not counted here (an EVALSHA is one command).
"""

from __future__ import annotations

import json
import runpy
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.connection

INTERVAL_S = 0.1


def command_names(packed: bytes) -> list[str]:
    """The names of the RESP commands in ``packed`` (arrays of bulk strings), in order.

    Raises:
        ValueError: ``packed`` is not a sequence of RESP arrays of bulk strings.
    """
    names: list[str] = []
    at = 0
    while at < len(packed):
        if packed[at : at + 1] != b"*":
            raise ValueError(f"packed: expected '*' at byte {at}")
        end = packed.index(b"\r\n", at)
        count = int(packed[at + 1 : end])
        at = end + 2
        for i in range(count):
            if packed[at : at + 1] != b"$":
                raise ValueError(f"packed: expected '$' at byte {at}")
            end = packed.index(b"\r\n", at)
            size = int(packed[at + 1 : end])
            if i == 0:
                names.append(packed[end + 2 : end + 2 + size].decode("ascii", "replace").upper())
            at = end + 2 + size + 2
    return names


def _as_bytes(command: Any) -> bytes:
    if isinstance(command, str):
        return command.encode()
    if isinstance(command, bytes | bytearray | memoryview):
        return bytes(command)
    return b"".join(_as_bytes(part) for part in command)


@dataclass(frozen=True)
class Counts:
    """Round trips and commands by name, as counted so far (or between two countings)."""

    round_trips: int = 0
    commands: dict[str, int] = field(default_factory=dict)

    def __sub__(self, earlier: Counts) -> Counts:
        names = set(self.commands) | set(earlier.commands)
        diff = {n: self.commands.get(n, 0) - earlier.commands.get(n, 0) for n in names}
        return Counts(self.round_trips - earlier.round_trips, {n: c for n, c in diff.items() if c})

    @property
    def total(self) -> int:
        """Commands of every name."""
        return sum(self.commands.values())


class Tally:
    """Round trips and commands by name, shared by every thread of the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.round_trips = 0
        self.commands: Counter[str] = Counter()

    def add(self, command: Any) -> None:
        """Count one write of ``command`` (bytes, str or a list of parts)."""
        names = command_names(_as_bytes(command))
        with self._lock:
            self.round_trips += 1
            self.commands.update(names)

    def counts(self) -> Counts:
        """The counts so far."""
        with self._lock:
            return Counts(self.round_trips, dict(self.commands))

    def snapshot(self, seq: int) -> dict[str, Any]:
        """The counts so far, with a sequence number that tells a fresh file from an old one."""
        with self._lock:
            return {"seq": seq, "round_trips": self.round_trips, "commands": dict(self.commands)}


def install(tally: Tally) -> None:
    """Count every ``send_packed_command`` of redis-py's connections into ``tally``."""
    original = redis.connection.AbstractConnection.send_packed_command

    def counted(self: Any, command: Any, check_health: bool = True) -> None:
        tally.add(command)
        original(self, command, check_health)  # type: ignore[no-untyped-call]

    redis.connection.AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]


@contextmanager
def counting() -> Iterator[Tally]:
    """Count this process's Redis traffic inside the block (one thread at a time, please)."""
    original = redis.connection.AbstractConnection.send_packed_command
    tally = Tally()
    install(tally)
    try:
        yield tally
    finally:
        redis.connection.AbstractConnection.send_packed_command = original  # type: ignore[method-assign]


def _keep_writing(tally: Tally, out: Path) -> None:
    seq = 0
    stop = threading.Event()
    while not stop.wait(INTERVAL_S):
        seq += 1
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(tally.snapshot(seq)))
        tmp.replace(out)


def fresh_counts(path: Path, *, timeout_s: float = 10.0) -> Counts:
    """The counts of the process writing ``path``, as written after this call began.

    Waits for a newer sequence number than the one on file, so that every command sent before
    the call is in the answer.

    Raises:
        TimeoutError: the file was not rewritten within ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    first = -1
    while time.monotonic() < deadline:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = None  # not written yet
        if data is not None:
            if first < 0:
                first = int(data["seq"])
            elif int(data["seq"]) > first + 1:
                return Counts(int(data["round_trips"]), dict(data["commands"]))
        time.sleep(INTERVAL_S / 4)
    raise TimeoutError(f"{path}: no fresh Redis counts after {timeout_s:.0f} s")


def main(argv: list[str]) -> None:
    """``OUT.json -- -m MODULE ARGS...``: count, then run MODULE as ``__main__``."""
    if len(argv) < 4 or argv[1] != "--" or argv[2] != "-m":
        raise SystemExit("usage: python -m bench.redis_count OUT.json -- -m MODULE [ARGS...]")
    out, module = Path(argv[0]), argv[3]
    tally = Tally()
    install(tally)
    threading.Thread(target=_keep_writing, args=(tally, out), daemon=True).start()
    sys.argv = [module, *argv[4:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
