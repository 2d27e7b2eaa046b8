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
    "PUBLISHER_HEADER",
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
# The broker user that published the event, recorded when a consumer moves it (its own
# ``user_id`` then replaces the publisher's); believed only on a message whose ``user_id`` is
# the consumer's own user (see taskmesh_common.events.ownership).
PUBLISHER_HEADER = "x-taskmesh-publisher"


async def declare_exchange(channel: AbstractChannel, name: str) -> AbstractExchange:
    """The events exchange: durable topic, routing key = event type."""
    return await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)


@dataclass(frozen=True)
class ConsumerTopology:
    """A consumer's queues: ``queue`` (quorum), ``queue.retry.<n>`` and ``queue.dlq``.

    They share one direct exchange of their own, ``queue.requeue``, each bound with its own
    name as routing key. The consumer moves a failed message to a retry or dead-letter queue
    by publishing on it; a retry queue holds a message for its TTL, then dead-letters it
    through it back to the main queue; the main queue's delivery limit (messages that keep
    crashing the process before it can settle them) dead-letters through it to the dlq.

    Its name is in the service's own queue namespace, so the service's broker user may
    write on it and no other user may. The default exchange is not used: write on it would
    let a service put a message into any queue it can name.
    """

    queue: str
    retry_delays_ms: Sequence[int]
    delivery_limit: int

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.queue}.dlq"

    @property
    def requeue_exchange(self) -> str:
        """The direct exchange routing to this consumer's queues by their names."""
        return f"{self.queue}.requeue"

    def retry_queue(self, n: int) -> str:
        """Retry queue number ``n`` (1-based), holding messages for ``retry_delays_ms[n-1]``."""
        return f"{self.queue}.retry.{n}"

    def retry_queue_for_attempt(self, failed_attempt: int) -> str:
        # Attempts past the last delay keep using the longest one.
        return self.retry_queue(min(failed_attempt, len(self.retry_delays_ms)))

    def retry_queues(self) -> list[str]:
        return [self.retry_queue(n) for n in range(1, len(self.retry_delays_ms) + 1)]

    def main_arguments(self) -> dict[str, Any]:
        return {
            "x-queue-type": "quorum",
            # RabbitMQ 3.10 has no default delivery limit: set one explicitly.
            "x-delivery-limit": self.delivery_limit,
            "x-dead-letter-exchange": self.requeue_exchange,
            "x-dead-letter-routing-key": self.dead_letter_queue,
        }

    def retry_arguments(self, n: int) -> dict[str, Any]:
        return {
            "x-message-ttl": int(self.retry_delays_ms[n - 1]),
            "x-dead-letter-exchange": self.requeue_exchange,
            "x-dead-letter-routing-key": self.queue,
        }

    def arguments(self) -> dict[str, dict[str, Any]]:
        """Each queue's declaration arguments, by name: the dlq, the retry queues, the main queue."""
        return {
            self.dead_letter_queue: {"x-queue-type": "quorum"},
            **{name: self.retry_arguments(n) for n, name in enumerate(self.retry_queues(), 1)},
            self.queue: self.main_arguments(),
        }

    async def declare_requeue_exchange(self, channel: AbstractChannel) -> AbstractExchange:
        return await channel.declare_exchange(
            self.requeue_exchange, aio_pika.ExchangeType.DIRECT, durable=True
        )

    async def declare(
        self, channel: AbstractChannel, exchange: AbstractExchange, routing_keys: Sequence[str]
    ) -> AbstractQueue:
        """Declare the requeue exchange and the queues, bind them; return the main queue.

        Raises ``aiormq.exceptions.ChannelPreconditionFailed`` (closing ``channel``) when a
        queue exists with other arguments; :mod:`taskmesh_common.events.migration` moves
        such a layout to this one.
        """
        requeue = await self.declare_requeue_exchange(channel)
        queues: dict[str, AbstractQueue] = {}
        # The dlq first and the main queue last: each queue's dead-letter target exists first.
        for name, arguments in self.arguments().items():
            queues[name] = await channel.declare_queue(name, durable=True, arguments=arguments)
            await queues[name].bind(requeue, routing_key=name)
        queue = queues[self.queue]
        for key in routing_keys:
            await queue.bind(exchange, routing_key=key)
        return queue
