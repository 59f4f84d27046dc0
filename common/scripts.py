"""Lua scripts that ship as ``.lua`` files beside their store: read once, registered once."""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Mapping
from importlib import resources

import redis
from redis.commands.core import Script

_lock = threading.Lock()
# One Script object per client and script: a store built again on the same client (every
# `htap-sync inspect`, every fleet scrape) neither reads the file nor hashes the text again.
_registered: weakref.WeakKeyDictionary[redis.Redis, dict[tuple[str, str, str], Script]] = (
    weakref.WeakKeyDictionary()
)


@functools.cache
def source(beside: str, name: str) -> str:
    """The text of the script ``name`` shipped beside the module ``beside`` (its
    ``__name__``: a script is loaded only by the module it ships with), read from disk once.

    Raises:
        FileNotFoundError: no such script beside the module (a broken install).
    """
    package = beside.rpartition(".")[0]
    return resources.files(package).joinpath(name).read_text(encoding="utf-8")


def composed(beside: str, name: str, functions: Mapping[str, tuple[str, str]]) -> str:
    """The text of script ``name`` preceded by other scripts, each as a local function.

    ``functions`` maps a function name to the ``(module, file)`` of a script; its body
    becomes a local ``<name> = function(KEYS, ARGV) ... end``, so it reads its own ``KEYS``
    and ``ARGV`` and returns what the script returns; the functions may call each other (a
    script composed of others is composed in with them). One script can then run several
    others in one call, and each stays the single definition of its steps.
    """
    if not functions:
        return source(beside, name)
    # Declared first, so that one function may call another whatever their order.
    parts = ["local " + ", ".join(functions) + "\n"]
    parts += [
        f"{function} = function(KEYS, ARGV)\n{source(*where).rstrip()}\nend\n"
        for function, where in functions.items()
    ]
    return "".join(parts) + source(beside, name)


def script(
    client: redis.Redis,
    beside: str,
    name: str,
    constants: Mapping[str, str] | None = None,
    functions: Mapping[str, tuple[str, str]] | None = None,
) -> Script:
    """The script ``name`` that ships beside the module ``beside``, registered on ``client``.

    Args:
        client: the redis-py client the script runs on (or whose pipelines it runs on).
        beside: the ``__name__`` of the module the ``.lua`` file ships beside (the module
            that owns the script; another package's scripts come by importing its module).
        name: the file name, e.g. ``submit.lua``.
        constants: words of the script replaced by values before it is registered (limits
            that are constants of the code, not arguments of each call).
        functions: other scripts the script calls as functions (see :func:`composed`).

    Returns:
        A redis-py ``Script``: called with ``keys``/``args``, it runs by SHA and loads itself
        into a Redis that does not know it (after a restart, on a new master).
    """
    fixed = tuple(sorted((constants or {}).items()))
    calls = tuple(sorted((functions or {}).items()))
    key = (beside, name, repr((fixed, calls)))
    with _lock:
        scripts = _registered.setdefault(client, {})
        found = scripts.get(key)
        if found is None:
            text = composed(beside, name, dict(calls))
            for word, value in fixed:
                text = text.replace(word, value)
            found = scripts[key] = client.register_script(text)
        return found
