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
def source(package: str, name: str) -> str:
    """The text of the script ``name`` shipped in ``package`` (read from disk once).

    Raises:
        FileNotFoundError: no such script in the package (a broken install).
    """
    return resources.files(package).joinpath(name).read_text(encoding="utf-8")


def composed(package: str, name: str, functions: Mapping[str, tuple[str, str]]) -> str:
    """The text of script ``name`` preceded by other scripts, each as a local function.

    ``functions`` maps a function name to the ``(package, file)`` of a script; its body
    becomes a local ``<name> = function(KEYS, ARGV) ... end``, so it reads its own ``KEYS``
    and ``ARGV`` and returns what the script returns; the functions may call each other (a
    script composed of others is composed in with them). One script can then run several
    others in one call, and each stays the single definition of its steps.
    """
    if not functions:
        return source(package, name)
    # Declared first, so that one function may call another whatever their order.
    parts = ["local " + ", ".join(functions) + "\n"]
    parts += [
        f"{function} = function(KEYS, ARGV)\n{source(*where).rstrip()}\nend\n"
        for function, where in functions.items()
    ]
    return "".join(parts) + source(package, name)


def script(
    client: redis.Redis,
    package: str,
    name: str,
    constants: Mapping[str, str] | None = None,
    functions: Mapping[str, tuple[str, str]] | None = None,
) -> Script:
    """The script ``name`` of ``package``, registered on ``client`` with redis-py.

    Args:
        client: the redis-py client the script runs on (or whose pipelines it runs on).
        package: the import package the ``.lua`` file ships in, e.g. ``htap_sync.common``.
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
    key = (package, name, repr((fixed, calls)))
    with _lock:
        scripts = _registered.setdefault(client, {})
        found = scripts.get(key)
        if found is None:
            text = composed(package, name, dict(calls))
            for word, value in fixed:
                text = text.replace(word, value)
            found = scripts[key] = client.register_script(text)
        return found
