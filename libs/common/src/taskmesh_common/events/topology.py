"""Exchange and queue declarations: one place that knows the broker-side names and arguments."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

__all__ = [
    "ATTEMPT_HEADER",
    "DEAD_LETTER_ERROR_HEADER",
    "DEAD_LETTER_QUEUE_HEADER",
    "DEAD_LETTER_REASON_HEADER",
    "ROUTING_KEY_HEADER",
    "ConsumerTopology",
    "declare_exchange",
]

# Headers the consumer adds when it moves a message to a retry or dead-letter queue.
ATTEMPT_HEADER = "x-taskmesh-attempt"
ROUTING_KEY_HEADER = "x-taskmesh-routing-key"
DEAD_LETTER_REASON_HEADER = "x-taskmesh-dead-letter-reason"
DEAD_LETTER_ERROR_HEADER = "x-taskmesh-error"
DEAD_LETTER_QUEUE_HEADER = "x-taskmesh-queue"


async def declare_exchange(channel: AbstractChannel, name: str) -> AbstractExchange:
    """The events exchange: durable topic, routing key = event type."""
    return await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)


@dataclass(frozen=True)
class ConsumerTopology:
    """A consumer's queues: ``queue`` (quorum), ``queue.retry.<n>`` and ``queue.dlq``.

    Retry queues hold a message for their TTL, then dead-letter it through the default
    exchange back to the main queue. The main queue's delivery limit catches messages
    that keep crashing the process before it can settle them.
    """

    queue: str
    retry_delays_ms: Sequence[int]
    delivery_limit: int

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.queue}.dlq"

    def retry_queue(self, n: int) -> str:
        """Retry queue number ``n`` (1-based), holding messages for ``retry_delays_ms[n-1]``."""
        return f"{self.queue}.retry.{n}"

    def retry_queue_for_attempt(self, failed_attempt: int) -> str:
        # Attempts past the last delay keep using the longest one.
        return self.retry_queue(min(failed_attempt, len(self.retry_delays_ms)))

    def main_arguments(self) -> dict[str, Any]:
        return {
            "x-queue-type": "quorum",
            # RabbitMQ 3.10 has no default delivery limit: set one explicitly.
            "x-delivery-limit": self.delivery_limit,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": self.dead_letter_queue,
        }

    async def declare(
        self, channel: AbstractChannel, exchange: AbstractExchange, routing_keys: Sequence[str]
    ) -> AbstractQueue:
        await channel.declare_queue(
            self.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"}
        )
        for n, delay in enumerate(self.retry_delays_ms, start=1):
            await channel.declare_queue(
                self.retry_queue(n),
                durable=True,
                arguments={
                    "x-message-ttl": int(delay),
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": self.queue,
                },
            )
        queue = await channel.declare_queue(
            self.queue, durable=True, arguments=self.main_arguments()
        )
        for key in routing_keys:
            await queue.bind(exchange, routing_key=key)
        return queue
