"""Copies of received messages, for retry and dead-letter queues and for replays."""

from __future__ import annotations

from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from taskmesh_common.events.ownership import message_publisher
from taskmesh_common.events.topology import PUBLISHER_HEADER, ROUTING_KEY_HEADER

__all__ = ["copy_message", "forwarded_headers"]


def forwarded_headers(
    message: AbstractIncomingMessage, own: tuple[str, str] | None = None
) -> dict[str, Any]:
    """The message's headers (trace context included), remembering its original routing key.

    With ``own``, the broker user that will publish the copy and the consumer's requeue
    exchange, the publisher the copy is about to lose (its ``user_id`` becomes that user) is
    recorded in ``PUBLISHER_HEADER``; a header the message came with is kept only when it was
    believed (``ownership.message_publisher``).
    """
    # x-death is the broker's own record of dead-lettering; it must not travel further.
    headers = {k: v for k, v in (message.headers or {}).items() if k != "x-death"}
    # After a retry the message arrives with the queue's name as routing key.
    headers.setdefault(ROUTING_KEY_HEADER, message.routing_key or "")
    if own is not None:
        headers.pop(PUBLISHER_HEADER, None)
        if (publisher := message_publisher(message, *own)) is not None:
            headers[PUBLISHER_HEADER] = publisher
    return headers


def copy_message(
    message: AbstractIncomingMessage, headers: dict[str, Any], *, user_id: str | None = None
) -> aio_pika.Message:
    """The same persistent message (body, id, type, content type) with ``headers``.

    ``user_id`` must be the publishing connection's user (or ``None``): the broker refuses
    any other.
    """
    return aio_pika.Message(
        body=message.body,
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=message.message_id,
        type=message.type,
        app_id=message.app_id,
        user_id=user_id,
        timestamp=message.timestamp,
        headers=headers,
    )
