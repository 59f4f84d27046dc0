"""Every Redis key this project writes, in one place, all under the deployment's prefix."""

from __future__ import annotations

from urllib.parse import urlsplit

# The field of a list snapshot hash holding its number (no task name of ours has a "#").
LIST_EPOCH_FIELD = "#epoch"


class Keys:
    """Key names of one deployment (``HTAP_SYNC_KEY_PREFIX``).

    The broker's own keys (queue, unacked messages) are under the same prefix too: the Celery
    app sets kombu's ``global_keyprefix`` to :attr:`broker_prefix`.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    @property
    def broker_prefix(self) -> str:
        """What kombu puts before each of its keys."""
        return f"{self.prefix}:"

    def queue(self, name: str) -> str:
        """The list holding a Celery queue's messages."""
        return f"{self.broker_prefix}{name}"

    def taken_looked(self, tag: str) -> str:
        """Set (with an expiry) by the first mover that looked at a message taken and never
        started (``worker/mover.py``): the others leave it."""
        return f"{self.prefix}:taken-looked:{tag}"

    def ticket(self, ticket: str) -> str:
        """A ticket's hash."""
        return f"{self.prefix}:ticket:{ticket}"

    def history(self, ticket: str) -> str:
        """A ticket's attempt history (a list)."""
        return f"{self.prefix}:history:{ticket}"

    def alive(self, node: str) -> str:
        """A worker process's heartbeat (a key with a short expiry; see ``alive.lua``)."""
        return f"{self.prefix}:alive:{node}"

    @property
    def failed(self) -> str:
        """The index of failed tickets (a sorted set by failure time)."""
        return f"{self.prefix}:failed"

    @property
    def delayed(self) -> str:
        """The durable delayed set (a sorted set by due time)."""
        return f"{self.prefix}:delayed"

    def bucket(self, endpoint: str, project_id: str, api: str) -> str:
        """The rate-limit bucket of one API of one project on one endpoint."""
        return f"{self.prefix}:rate:{urlsplit(endpoint).netloc}:{project_id}:{api}"

    def buckets(self) -> str:
        """A pattern matching every bucket."""
        return f"{self.prefix}:rate:*"

    def iam_token(self, identity: str, project_id: str) -> str:
        """The cached IAM token of one identity (a digest) for one project."""
        return f"{self.prefix}:iam-token:{identity}:{project_id}"

    def breakers(self) -> str:
        """A pattern matching every breaker."""
        return f"{self.prefix}:breaker:*"

    def breaker(self, endpoint: str) -> str:
        """The circuit breaker of one endpoint."""
        return f"{self.prefix}:breaker:{urlsplit(endpoint).netloc}"

    @property
    def read_fence(self) -> str:
        """Written after each status read that must be on the replicas, to ``WAIT`` for it."""
        return f"{self.prefix}:read_fence"

    @property
    def follow_due(self) -> str:
        """When each followed instance is due for its next round (a sorted set)."""
        return f"{self.prefix}:follow:due"

    @property
    def follow_fence(self) -> str:
        """Each followed instance's claim counter: the fencing token of its rounds (a hash)."""
        return f"{self.prefix}:follow:fence"

    def follow_tasks(self, instance_ref: str) -> str:
        """The tickets followed on one instance (a hash: ticket -> what following needs)."""
        return f"{self.prefix}:follow:tasks:{instance_ref}"

    def list_epoch(self, instance_ref: str) -> str:
        """The instance's list call counter for operations: each shared list call takes the
        next number before it is sent (no expiry: it must never go back)."""
        return f"{self.prefix}:oplist:epoch:{instance_ref}"

    def list_rows(self, instance_ref: str) -> str:
        """The instance's last shared list snapshot (a hash: task name -> row JSON, and the
        snapshot's number under :data:`LIST_EPOCH_FIELD`)."""
        return f"{self.prefix}:oplist:rows:{instance_ref}"

    def list_lister(self, instance_ref: str) -> str:
        """Who makes the instance's shared list call now (a short claim: SET NX PX)."""
        return f"{self.prefix}:oplist:lister:{instance_ref}"
