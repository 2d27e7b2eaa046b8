"""The broker's own rate: persistent messages, publisher confirms, a quorum queue.

The reference for the event pipeline: what RabbitMQ on this machine does with nothing of
ours in the way (one confirm awaited at a time, then 256 in flight), and consuming with acks.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aio_pika

__all__ = ["broker_rates"]

_BODY = b'{"id":"00000000-0000-0000-0000-000000000000","type":"task.created","data":{}}' + (
    b" " * 300
)  # about the size of a task event


def _message(i: int) -> aio_pika.Message:
    return aio_pika.Message(
        body=_BODY,
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=str(i),
    )


async def _publish(channel: Any, queue: str, count: int, in_flight: int) -> float:
    exchange = channel.default_exchange
    slots = asyncio.Semaphore(in_flight)

    async def one(i: int) -> None:
        async with slots:
            await exchange.publish(_message(i), routing_key=queue, mandatory=True, timeout=30)

    began = time.perf_counter()
    if in_flight == 1:
        for i in range(count):
            await one(i)
    else:
        await asyncio.gather(*(one(i) for i in range(count)))
    return count / (time.perf_counter() - began)


async def _consume(channel: Any, queue_name: str, count: int) -> float:
    await channel.set_qos(prefetch_count=256)
    queue = await channel.get_queue(queue_name)
    got = 0
    began = time.perf_counter()
    async with queue.iterator() as messages:
        async for message in messages:
            await message.ack()
            got += 1
            if got >= count:
                break
    return count / (time.perf_counter() - began)


async def broker_rates(amqp_url: str, *, count: int) -> dict[str, float]:
    """msg/s publishing one at a time, with 256 in flight, and consuming (acks)."""
    connection = await aio_pika.connect(amqp_url)
    queue_name = f"bench.raw.{uuid.uuid4().hex[:8]}"
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await channel.declare_queue(queue_name, durable=True, arguments={"x-queue-type": "quorum"})
        one_at_a_time = await _publish(channel, queue_name, count, 1)
        in_flight = await _publish(channel, queue_name, count, 256)
        consume_channel = await connection.channel()
        consumed = await _consume(consume_channel, queue_name, 2 * count)
        await channel.queue_delete(queue_name)
    finally:
        await connection.close()
    return {
        "messages": count,
        "publish_confirm_one_at_a_time_per_s": round(one_at_a_time, 1),
        "publish_confirm_256_in_flight_per_s": round(in_flight, 1),
        "consume_ack_per_s": round(consumed, 1),
    }
