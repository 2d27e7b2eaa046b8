"""Retries and dead letters under a service's own broker user, which has no write on the
default exchange: they go through the consumer's requeue exchange."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractConnection
from taskmesh_common.amqp import BrokerConnection, broker_user
from taskmesh_common.events import Consumer, Envelope
from taskmesh_common.events.dlq import DeadLetter, list_dead_letters
from taskmesh_common.events.envelope import envelope_body
from taskmesh_common.events.topology import declare_exchange
from taskmesh_common.testing import unique_name
from taskmesh_common.testing.servers import BackingServers

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
async def admin(backing_servers: BackingServers) -> AsyncIterator[AbstractConnection]:
    connection = await aio_pika.connect(backing_servers.amqp_url, timeout=10)
    async with connection:
        yield connection


async def dead_letters(connection: AbstractConnection, queue: str, count: int) -> list[DeadLetter]:
    async def poll() -> list[DeadLetter]:
        while len(letters := await list_dead_letters(connection, queue)) < count:
            await asyncio.sleep(0.1)
        return letters

    return await asyncio.wait_for(poll(), 60)


async def test_retries_and_dead_letters_work_under_the_services_own_broker_user(
    backing_servers, admin, db, make_task_created
):
    exchange, queue = unique_name("serviceuser"), f"{unique_name('su')}.analytics.events"
    flaky, broken = make_task_created(), make_task_created()
    calls: dict[str, int] = {flaky["id"]: 0, broken["id"]: 0}
    applied = asyncio.Event()

    async def handler(envelope: Envelope) -> None:
        calls[envelope.id] += 1
        if envelope.id == broken["id"] or calls[envelope.id] <= 2:
            raise RuntimeError("database hiccup")
        applied.set()

    admin_user = broker_user(backing_servers.amqp_url)
    url = backing_servers.service_amqp_urls.get("analytics", backing_servers.amqp_url)
    broker = BrokerConnection(url, name=unique_name("analytics"))
    broker.start()
    consumer = Consumer(
        broker,
        exchange=exchange,
        queue=queue,
        routing_keys=["task.*"],
        handler=handler,
        db=db,
        service="analytics",
        # The events come from the admin connection, standing in for the tasks service.
        publisher_users={"tasks": admin_user},
        retry_delays_ms=(100, 200),
        max_attempts=3,
    )
    try:
        await consumer.start(start_timeout=30)
        assert consumer.ready.is_set()
        channel = await admin.channel(publisher_confirms=True)
        events = await declare_exchange(channel, exchange)
        for body, message_id in [
            (envelope_body(flaky), flaky["id"]),
            (envelope_body(broken), broken["id"]),
            (b"not json", "poison"),
        ]:
            message = aio_pika.Message(body, message_id=message_id, user_id=admin_user)
            await events.publish(message, routing_key="task.created")
        await asyncio.wait_for(applied.wait(), 60)
        letters = await dead_letters(admin, queue, 2)
    finally:
        await consumer.stop()
        await broker.close()
    assert calls == {flaky["id"]: 3, broken["id"]: 3}
    reasons: dict[Any, Any] = {letter.message_id: letter.reason for letter in letters}
    assert reasons == {broken["id"]: "max-attempts", "poison": "invalid-event"}
