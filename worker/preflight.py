"""Checks a worker makes before it takes work: the Redis it uses must keep what it accepts."""

from __future__ import annotations

import logging

import redis

from htap_sync.common.errors import SettingsError
from htap_sync.common.settings import ENV_PREFIX

log = logging.getLogger("htap_sync.worker")

SAFE_POLICIES = frozenset({"noeviction"})


def check_eviction_policy(client: redis.Redis, *, allow_evicting: bool) -> str | None:
    """Refuse a Redis whose ``maxmemory-policy`` may evict queued requests or tickets.

    Returns:
        the policy, or None when the server does not let us read it (managed Redis often
        disables CONFIG); that is logged, not fatal.

    Raises:
        SettingsError: an evicting policy, unless ``allow_evicting``.
    """
    try:
        policy = str(client.config_get("maxmemory-policy").get("maxmemory-policy", ""))
    except redis.ResponseError as exc:
        log.warning("cannot read Redis maxmemory-policy (%s); make sure it is noeviction", exc)
        return None
    if policy not in SAFE_POLICIES and not allow_evicting:
        raise SettingsError(
            f"{ENV_PREFIX}REDIS_URL: Redis maxmemory-policy is {policy!r}, which may evict"
            " queued requests; set it to noeviction (redis-cli CONFIG SET maxmemory-policy"
            f" noeviction) or set {ENV_PREFIX}ALLOW_EVICTING_REDIS=true"
        )
    return policy
