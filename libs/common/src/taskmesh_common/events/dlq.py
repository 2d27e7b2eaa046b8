"""Inspecting and replaying a consumer's dead-letter queue (``<queue>.dlq``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from aio_pika.abc import AbstractConnection, AbstractIncomingMessage

from taskmesh_common.events.forwarding import copy_message
from taskmesh_common.events.topology import (
    ATTEMPT_HEADER,
    DEAD_LETTER_ERROR_HEADER,
    DEAD_LETTER_QUEUE_HEADER,
    DEAD_LETTER_REASON_HEADER,
    PUBLISHER_HEADER,
    ROUTING_KEY_HEADER,
    declare_exchange,
)

__all__ = ["DeadLetter", "dead_letter_queue_name", "list_dead_letters", "replay_dead_letters"]

_OUR_HEADERS = {
    ATTEMPT_HEADER,
    DEAD_LETTER_ERROR_HEADER,
    DEAD_LETTER_QUEUE_HEADER,
    DEAD_LETTER_REASON_HEADER,
    PUBLISHER_HEADER,
    ROUTING_KEY_HEADER,
}


def dead_letter_queue_name(queue: str) -> str:
    """``queue`` may name the consumer's queue or its dead-letter queue."""
    return queue if queue.endswith(".dlq") else f"{queue}.dlq"


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


@dataclass
class DeadLetter:
    message_id: str | None
    type: str | None
    routing_key: str | None
    reason: str | None
    error: str | None
    attempts: str | None
    body: str
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_message(cls, message: AbstractIncomingMessage) -> DeadLetter:
        headers = message.headers or {}
        return cls(
            message_id=message.message_id,
            type=message.type,
            routing_key=_original_routing_key(message),
            reason=_text(headers.get(DEAD_LETTER_REASON_HEADER)),
            error=_text(headers.get(DEAD_LETTER_ERROR_HEADER)),
            attempts=_text(headers.get(ATTEMPT_HEADER)),
            body=message.body.decode("utf-8", "replace"),
            headers={k: t for k, v in headers.items() if (t := _text(v)) is not None},
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


def _publisher(message: AbstractIncomingMessage) -> str | None:
    """Who published the dead letter: recorded by the consumer that moved it, else its own."""
    recorded = _text((message.headers or {}).get(PUBLISHER_HEADER))
    return recorded or message.user_id or None


def _original_routing_key(message: AbstractIncomingMessage) -> str | None:
    headers = message.headers or {}
    key = _text(headers.get(ROUTING_KEY_HEADER))
    if key:
        return key
    if message.type:
        return message.type
    with contextlib.suppress(ValueError, AttributeError):
        event_type = json.loads(message.body).get("type")
        if isinstance(event_type, str):
            return event_type
    return None


async def list_dead_letters(
    connection: AbstractConnection, queue: str, limit: int = 100
) -> list[DeadLetter]:
    """Up to ``limit`` dead letters, oldest first; they stay in the queue, and are back in
    it (ready to be read or replayed) when this returns."""
    name = dead_letter_queue_name(queue)
    channel = await connection.channel()
    try:
        dlq = await channel.declare_queue(name, passive=True)
        letters: list[DeadLetter] = []
        while len(letters) < limit:
            message = await dlq.get(no_ack=False, fail=False)
            if message is None:
                break
            letters.append(DeadLetter.from_message(message))
    finally:
        # Closing the channel returns every unacknowledged message to the queue.
        await channel.close()
    if letters:
        await _until_ready(connection, name, len(letters))
    return letters


async def _until_ready(
    connection: AbstractConnection, name: str, count: int, timeout: float = 5.0
) -> None:
    """Wait until queue ``name`` holds ``count`` ready messages, at most ``timeout`` s.

    A quorum queue takes back a closed channel's unacknowledged messages after the close
    is confirmed: a replay right after a listing found none ready under load (1 in 12).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    channel = await connection.channel()
    try:
        while True:
            dlq = await channel.declare_queue(name, passive=True)
            ready = dlq.declaration_result.message_count or 0
            if ready >= count or loop.time() >= deadline:
                return
            await asyncio.sleep(0.02)
    finally:
        await channel.close()


async def replay_dead_letters(
    connection: AbstractConnection, queue: str, exchange: str, limit: int | None = None
) -> int:
    """Publish dead letters back to ``exchange`` under their original routing key.

    Each is removed from the dead-letter queue only after the broker confirmed its
    re-publication. At most the messages present at the start are replayed, so one that
    fails again (and comes back) is not replayed twice in one run. Returns the count.

    Each keeps the broker user that published it as its ``user_id`` (consumers accept an
    event only from its owner's user, ``ownership``). The broker takes that only from the
    same user or one tagged ``impersonator``; a dead letter without a known publisher goes
    out without ``user_id``, and consumers refuse it again.
    """
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    try:
        target = await declare_exchange(channel, exchange)
        dlq = await channel.declare_queue(dead_letter_queue_name(queue), passive=True)
        present = dlq.declaration_result.message_count or 0
        budget = present if limit is None else min(limit, present)
        replayed = 0
        while replayed < budget:
            message = await dlq.get(no_ack=False, fail=False)
            if message is None:
                break
            routing_key = _original_routing_key(message)
            if not routing_key:
                await message.nack(requeue=True)
                raise ValueError(f"dead letter {message.message_id} has no routing key")
            headers = {
                k: v
                for k, v in (message.headers or {}).items()
                if k not in _OUR_HEADERS and k != "x-death"
            }
            republished = copy_message(message, headers, user_id=_publisher(message))
            try:
                await target.publish(republished, routing_key=routing_key, timeout=10)
            except Exception:
                await message.nack(requeue=True)
                raise
            await message.ack()
            replayed += 1
        return replayed
    finally:
        await channel.close()
