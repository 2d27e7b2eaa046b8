"""Copies of received messages, for retry and dead-letter queues and for replays."""

from __future__ import annotations

from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from taskmesh_common.events.topology import ROUTING_KEY_HEADER

__all__ = ["copy_message", "forwarded_headers"]


def forwarded_headers(message: AbstractIncomingMessage) -> dict[str, Any]:
    """The message's headers (trace context included), remembering its original routing key."""
    # x-death is the broker's own record of dead-lettering; it must not travel further.
    headers = {k: v for k, v in (message.headers or {}).items() if k != "x-death"}
    # After a retry the message arrives with the queue's name as routing key.
    headers.setdefault(ROUTING_KEY_HEADER, message.routing_key or "")
    return headers


def copy_message(message: AbstractIncomingMessage, headers: dict[str, Any]) -> aio_pika.Message:
    """The same persistent message (body, id, type, content type) with ``headers``."""
    return aio_pika.Message(
        body=message.body,
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=message.message_id,
        type=message.type,
        app_id=message.app_id,
        timestamp=message.timestamp,
        headers=headers,
    )
