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
from typing import Any

from celery import Celery
from kombu.serialization import dumps

from htap_sync.common.celery_app import CREATE_REPLICATION


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
        kwargsrepr=f"{{'ticket': '{ticket}', 'run': '{run}'}}",
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
