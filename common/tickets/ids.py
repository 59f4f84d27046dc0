"""Ticket ids: derived from a request's identity, so the same task always maps to one ticket."""

from __future__ import annotations

import hashlib
import re

_TICKET = re.compile(r"^tk_[0-9a-f]{32}$")


def ticket_id(project_id: str, instance_id: str, task_name: str) -> str:
    """The ticket of the task ``task_name`` on ``instance_id`` in ``project_id``.

    The three parts cannot contain ``/`` (the request model forbids it), so joining them with
    it is unambiguous; task names are case-sensitive on the HTAP side, and so is this.
    """
    identity = f"{project_id}/{instance_id}/{task_name}".encode()
    return "tk_" + hashlib.sha256(identity).hexdigest()[:32]


def is_ticket_id(text: str) -> bool:
    """True when ``text`` has the shape of a ticket id (it may still be unknown)."""
    return bool(_TICKET.match(text))


def operation_ticket(project_id: str, instance_id: str, task_name: str) -> str:
    """The ticket of the operations on one task (one at a time; apart from its create's)."""
    identity = f"operation/{project_id}/{instance_id}/{task_name}".encode()
    return "tk_" + hashlib.sha256(identity).hexdigest()[:32]
