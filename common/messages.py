"""Celery messages for the create task, built here so they can be queued in a Redis pipeline.

Celery's ``send_task`` costs a round trip to Redis per message. A bulk submission instead
builds each message with Celery's own protocol code (``as_task_v2``) and kombu's JSON
serializer, wraps it as kombu's Redis transport stores messages, and pushes it onto the queue
in the same Lua script that records the ticket: one round trip for a whole batch, and never a
ticket without its message (or a message without its ticket).
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any, NamedTuple

from celery import Celery
from kombu.serialization import dumps

from htap_sync.common.celery_app import CREATE_REPLICATION, CREATE_REPLICATIONS


def create_message(app: Celery, queue: str, ticket: str, run: str, request: dict[str, Any]) -> str:
    """The JSON text kombu's Redis transport would LPUSH for ``send_task(CREATE_REPLICATION)``.

    Args:
        app: the Celery app (its protocol settings shape the message).
        queue: the queue (and routing key) the worker consumes.
        ticket: the ticket id.
        run: the submission's run id.
        request: the validated request, as JSON-ready data.
    """
    task_id = str(uuid.uuid4())
    message = app.amqp.as_task_v2(
        task_id,
        CREATE_REPLICATION,
        args=(),
        kwargs={"ticket": ticket, "run": run, "request": request},
        argsrepr="()",
        # Flower shows this: the lane and tenant too (the routing key names the queue).
        kwargsrepr=f"{{'ticket': '{ticket}', 'run': '{run}', 'lane': '{request.get('lane')}',"
        f" 'tenant': '{request.get('tenant') or request.get('project_id')}'}}",
    )
    content_type, content_encoding, body = dumps(message.body, serializer="json")
    properties = {
        **message.properties,
        "delivery_mode": 2,
        "delivery_info": {"exchange": queue, "routing_key": queue},
        "priority": 0,
        "body_encoding": "base64",
        "delivery_tag": str(uuid.uuid4()),
    }
    envelope = {
        "body": base64.b64encode(body.encode() if isinstance(body, str) else body).decode(),
        "content-encoding": content_encoding,
        "content-type": content_type,
        "headers": message.headers,
        "properties": properties,
    }
    return json.dumps(envelope, separators=(",", ":"))


_ITEMS = "@@htap-sync-items@@"
_BODY = "@@htap-sync-body@@"


class BatchFrame(NamedTuple):
    """A message of the batch task with a hole for its items, which the submit transaction
    fills with the items whose tickets it recorded (:mod:`common.push_batch`).

    The message is ``head + json_string(body_head + items joined by "," + body_tail) + tail``:
    its body is kept as JSON text in the envelope (no ``body_encoding``), which kombu reads
    as it is, so that Lua can write it without base64.
    """

    head: str
    tail: str
    body_head: str
    body_tail: str

    def filled(self, items: list[str]) -> str:
        """The whole message for these items (:func:`batch_item` each), as the submit
        transaction writes it."""
        return self.head + json.dumps(self.body_head + ",".join(items) + self.body_tail) + self.tail


def batch_frame(app: Celery, queue: str, size: int) -> BatchFrame:
    """The frame of one message of :data:`CREATE_REPLICATIONS` (a fresh task id).

    Args:
        app: the Celery app (its protocol settings shape the message).
        queue: the queue (and routing key) the worker consumes.
        size: how many items it may carry (shown to operators in ``kwargsrepr``).
    """
    message = app.amqp.as_task_v2(
        str(uuid.uuid4()),
        CREATE_REPLICATIONS,
        args=(),
        kwargs={"items": [_ITEMS]},
        argsrepr="()",
        kwargsrepr=f"{{'items': [up to {size} tickets]}}",
    )
    body = json.dumps(message.body, separators=(",", ":"))
    body_head, body_tail = body.split(json.dumps(_ITEMS))
    properties = {
        **message.properties,
        "delivery_mode": 2,
        "delivery_info": {"exchange": queue, "routing_key": queue},
        "priority": 0,
        "delivery_tag": str(uuid.uuid4()),
    }
    envelope = {
        "body": _BODY,
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": message.headers,
        "properties": properties,
    }
    head, tail = json.dumps(envelope, separators=(",", ":")).split(json.dumps(_BODY))
    return BatchFrame(head, tail, body_head, body_tail)


def batch_item(ticket: str, run: str, request: dict[str, Any]) -> str:
    """One item of a batch message, as JSON text: ``[ticket, run, request]``."""
    return json.dumps([ticket, run, request], separators=(",", ":"))
