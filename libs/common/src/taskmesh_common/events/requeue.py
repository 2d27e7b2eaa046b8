"""Moving a failed message aside: to the next retry queue, or to the dead-letter queue.

The copy goes through the consumer's own requeue exchange (``ConsumerTopology``), published
as the consumer's broker user; its headers carry the attempt, the error, and the publisher
the consumer had checked (``forwarded_headers``; see ``ownership``). The original is acked
once the broker confirmed the copy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from aio_pika.abc import AbstractExchange, AbstractIncomingMessage

from taskmesh_common.events.envelope import Envelope
from taskmesh_common.events.forwarding import copy_message, forwarded_headers
from taskmesh_common.events.metrics import EVENTS_CONSUMED, EVENTS_DEAD_LETTERED
from taskmesh_common.events.topology import (
    ATTEMPT_HEADER,
    DEAD_LETTER_ERROR_HEADER,
    DEAD_LETTER_QUEUE_HEADER,
    DEAD_LETTER_REASON_HEADER,
    ConsumerTopology,
)

__all__ = ["Requeue"]

logger = logging.getLogger("taskmesh.events.consumer")


@dataclass(frozen=True)
class Requeue:
    """A started consumer's way to its own retry and dead-letter queues."""

    exchange: AbstractExchange
    topology: ConsumerTopology
    user: str
    service: str

    @property
    def own(self) -> tuple[str, str]:
        """Our broker user and requeue exchange: where our own copies come from."""
        return self.user, self.topology.requeue_exchange

    async def _send_to(
        self, queue_name: str, message: AbstractIncomingMessage, headers: dict[str, Any]
    ) -> None:
        """A copy of ``message`` into one of our queues, published as our own broker user."""
        copy = copy_message(message, headers, user_id=self.user)
        await self.exchange.publish(copy, routing_key=queue_name, mandatory=True, timeout=10)

    async def retry(
        self, message: AbstractIncomingMessage, envelope: Envelope, attempt: int, exc: Exception
    ) -> None:
        headers = forwarded_headers(message, self.own)
        headers[ATTEMPT_HEADER] = attempt + 1
        headers[DEAD_LETTER_ERROR_HEADER] = f"{type(exc).__name__}: {exc}"[:1000]
        target = self.topology.retry_queue_for_attempt(attempt)
        await self._send_to(target, message, headers)
        await message.ack()
        EVENTS_CONSUMED.labels(self.service, self.topology.queue, "retried").inc()
        logger.warning(
            "event handler failed, retrying later",
            extra={
                "queue": self.topology.queue,
                "event_id": envelope.id,
                "event_type": envelope.type,
                "attempt": attempt,
                "error": f"{type(exc).__name__}: {exc}"[:300],
            },
        )

    async def dead_letter(
        self, message: AbstractIncomingMessage, reason: str, exc: Exception, attempt: int = 1
    ) -> None:
        headers = forwarded_headers(message, self.own)
        headers[DEAD_LETTER_REASON_HEADER] = reason
        headers[DEAD_LETTER_ERROR_HEADER] = f"{type(exc).__name__}: {exc}"[:1000]
        headers[DEAD_LETTER_QUEUE_HEADER] = self.topology.queue
        headers[ATTEMPT_HEADER] = attempt
        await self._send_to(self.topology.dead_letter_queue, message, headers)
        await message.ack()
        EVENTS_CONSUMED.labels(self.service, self.topology.queue, "dead_lettered").inc()
        EVENTS_DEAD_LETTERED.labels(self.service, self.topology.queue).inc()
        logger.error(
            "event dead-lettered",
            extra={
                "queue": self.topology.queue,
                "message_id": message.message_id,
                "reason": reason,
                "error": f"{type(exc).__name__}: {exc}"[:300],
            },
        )
