"""Queues of the old layout (dead-lettering through the default exchange) moved at start.

The old layout is declared with the broker's admin user, exactly as earlier releases did;
the consumer then starts under the analytics service's own broker user, which may not
write on the default exchange, and must move every message to the current layout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import aio_pika
import aiormq
import pytest
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage
from taskmesh_common.amqp import BrokerConnection, broker_user
from taskmesh_common.events import Consumer, Envelope
from taskmesh_common.events.envelope import envelope_body
from taskmesh_common.events.migration import holding_queue, lock_queue
from taskmesh_common.events.topology import (
    ATTEMPT_HEADER,
    ROUTING_KEY_HEADER,
    ConsumerTopology,
    declare_exchange,
)
from taskmesh_common.testing import unique_name
from taskmesh_common.testing.servers import BackingServers

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

# Long delays: the retry queues' messages are still there when the consumer starts.
DELAYS = (60_000, 120_000)
ROUTING_KEYS = ["task.*"]
# The broker's admin, which publishes the events here (every test server set has it).
ADMIN_USER = "guest"


@pytest.fixture
def names() -> tuple[str, str]:
    """An events exchange and an analytics queue the analytics broker user may use."""
    return unique_name("migration"), f"{unique_name('migration')}.analytics.events"


@pytest.fixture
async def admin(backing_servers: BackingServers) -> AsyncIterator[AbstractConnection]:
    assert broker_user(backing_servers.amqp_url) == ADMIN_USER
    connection = await aio_pika.connect(backing_servers.amqp_url, timeout=10)
    async with connection:
        yield connection


async def declare_old_layout(channel: AbstractChannel, exchange: str, queue: str) -> None:
    """The queues as earlier releases declared them: dead letters via the default exchange."""
    events = await declare_exchange(channel, exchange)
    await channel.declare_queue(f"{queue}.dlq", durable=True, arguments={"x-queue-type": "quorum"})
    for n, delay in enumerate(DELAYS, start=1):
        await channel.declare_queue(
            f"{queue}.retry.{n}",
            durable=True,
            arguments={
                "x-message-ttl": delay,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": queue,
            },
        )
    main = await channel.declare_queue(
        queue,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": 20,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": f"{queue}.dlq",
        },
    )
    for key in ROUTING_KEYS:
        await main.bind(events, routing_key=key)


def message(entry: dict[str, Any], **headers: Any) -> aio_pika.Message:
    """The event as the admin connection publishes it, standing in for the tasks service."""
    return aio_pika.Message(
        envelope_body(entry),
        message_id=entry["id"],
        type=entry["type"],
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        user_id=ADMIN_USER,
        headers=headers or None,
    )


async def fill_old_layout(
    admin: AbstractConnection,
    exchange: str,
    queue: str,
    make_task_created: Callable[..., dict[str, Any]],
    *,
    main: int,
    retrying: int,
) -> set[str]:
    """``main`` events published to the exchange, ``retrying`` waiting in retry queue 1, and
    one dead letter; returns the ids of the events to be handled."""
    channel = await admin.channel(publisher_confirms=True)
    await declare_old_layout(channel, exchange, queue)
    events = await channel.get_exchange(exchange)
    ids = set()
    for _ in range(main):
        entry = make_task_created()
        await events.publish(message(entry), routing_key="task.created")
        ids.add(entry["id"])
    for _ in range(retrying):
        entry = make_task_created()
        retry = message(entry, **{ATTEMPT_HEADER: 2, ROUTING_KEY_HEADER: "task.created"})
        await channel.default_exchange.publish(retry, routing_key=f"{queue}.retry.1")
        ids.add(entry["id"])
    dead = make_task_created()
    await channel.default_exchange.publish(message(dead), routing_key=f"{queue}.dlq")
    await channel.close()
    return ids


class Recorder:
    """The handler: every event id it was called with, and an event once all expected came."""

    def __init__(self, expected: set[str]) -> None:
        self.expected = expected
        self.calls: list[str] = []
        self.all_handled = asyncio.Event()

    async def __call__(self, envelope: Envelope) -> None:
        self.calls.append(envelope.id)
        if self.expected <= set(self.calls):
            self.all_handled.set()

    async def wait(self, timeout: float = 60) -> None:
        await asyncio.wait_for(self.all_handled.wait(), timeout)
        await asyncio.sleep(1)  # a duplicate handled late would show up here

    def assert_each_once(self) -> None:
        counts = Counter(self.calls)
        assert set(counts) == self.expected
        assert set(counts.values()) == {1}, counts.most_common(3)


@contextlib.asynccontextmanager
async def consumers(
    url: str,
    db: Any,
    exchange: str,
    queue: str,
    recorder: Recorder,
    replicas: int = 1,
    start_timeout: float = 60,
) -> AsyncIterator[list[Consumer]]:
    """``replicas`` consumers of ``queue``, each on a broker connection of its own."""
    brokers = [BrokerConnection(url, name=unique_name("replica")) for _ in range(replicas)]
    running = [
        Consumer(
            broker,
            exchange=exchange,
            queue=queue,
            routing_keys=ROUTING_KEYS,
            handler=recorder,
            db=db,
            service="analytics",
            retry_delays_ms=DELAYS,
            publisher_users={"tasks": ADMIN_USER},
        )
        for broker in brokers
    ]
    for broker in brokers:
        broker.start()
    try:
        await asyncio.gather(*(consumer.start(start_timeout) for consumer in running))
        yield running
    finally:
        for consumer in running:
            await consumer.stop()
        for broker in brokers:
            await broker.close()


async def queue_state(admin: AbstractConnection, name: str) -> tuple[int, int] | None:
    """(ready messages, consumers) of queue ``name``, or None when there is no such queue."""
    channel = await admin.channel()
    try:
        declared = await channel.declare_queue(name, passive=True)
    except aiormq.exceptions.ChannelNotFoundEntity:
        return None
    await channel.close()
    result = declared.declaration_result
    return result.message_count or 0, result.consumer_count or 0


async def assert_current_layout(admin: AbstractConnection, topology: ConsumerTopology) -> None:
    """Declaring every queue with the current arguments succeeds; nothing temporary is left."""
    for name, arguments in topology.arguments().items():
        channel = await admin.channel()
        await channel.declare_queue(name, durable=True, arguments=arguments)
        await channel.close()
    assert await queue_state(admin, holding_queue(topology)) is None
    assert await queue_state(admin, lock_queue(topology)) is None


async def test_consumer_moves_the_old_layout_and_handles_every_message_once(
    backing_servers, admin, names, db, make_task_created
):
    exchange, queue = names
    ids = await fill_old_layout(admin, exchange, queue, make_task_created, main=30, retrying=5)
    topology = ConsumerTopology(queue, DELAYS, 20)
    recorder = Recorder(ids)
    url = backing_servers.service_amqp_urls.get("analytics", backing_servers.amqp_url)
    async with consumers(url, db, exchange, queue, recorder) as [consumer]:
        await recorder.wait()
        recorder.assert_each_once()
        await assert_current_layout(admin, topology)
        # The new main queue is bound: an event published now is handled too.
        later = make_task_created()
        recorder.expected.add(later["id"])
        recorder.all_handled.clear()
        channel = await admin.channel(publisher_confirms=True)
        events = await channel.get_exchange(exchange)
        await events.publish(message(later), routing_key="task.created")
        await recorder.wait()
        assert consumer.ready.is_set()
    recorder.assert_each_once()
    assert await queue_state(admin, topology.dead_letter_queue) == (1, 0)  # left where it was


async def test_two_replicas_starting_at_once_migrate_once_and_both_consume(
    backing_servers, admin, names, db, make_task_created, caplog
):
    caplog.set_level(logging.INFO, logger="taskmesh.events.migration")
    exchange, queue = names
    ids = await fill_old_layout(admin, exchange, queue, make_task_created, main=40, retrying=4)
    recorder = Recorder(ids)
    url = backing_servers.service_amqp_urls.get("analytics", backing_servers.amqp_url)
    async with consumers(url, db, exchange, queue, recorder, replicas=2) as replicas:
        await recorder.wait()
        assert all(replica.ready.is_set() for replica in replicas)
        assert await queue_state(admin, queue) == (0, 2)
    recorder.assert_each_once()
    await assert_current_layout(admin, ConsumerTopology(queue, DELAYS, 20))
    migrations = [r for r in caplog.records if r.getMessage().startswith("migrating queues")]
    assert len(migrations) == 1


async def test_migration_waits_for_a_replica_still_on_the_old_queue(
    backing_servers, admin, names, db, make_task_created
):
    """A rolling update: a replica of the older release holds a message until it stops."""
    exchange, queue = names
    ids = await fill_old_layout(admin, exchange, queue, make_task_created, main=3, retrying=0)
    old_replica = await admin.channel()
    await old_replica.set_qos(prefetch_count=1)
    held: list[AbstractIncomingMessage] = []

    async def hold(message: AbstractIncomingMessage) -> None:
        held.append(message)  # never settled: in progress when the replica stops

    await (await old_replica.get_queue(queue, ensure=False)).consume(hold)
    recorder = Recorder(ids)
    url = backing_servers.service_amqp_urls.get("analytics", backing_servers.amqp_url)
    async with consumers(url, db, exchange, queue, recorder, start_timeout=2) as [consumer]:
        started_beside_the_old_replica = consumer.ready.is_set()
        handled_beside_the_old_replica = list(recorder.calls)
        assert len(held) == 1
        await old_replica.close()  # the old replica stops: its message goes back
        await recorder.wait()
    assert not started_beside_the_old_replica
    assert handled_beside_the_old_replica == []
    recorder.assert_each_once()


async def test_a_migration_interrupted_after_deleting_the_old_queues_is_finished_at_next_start(
    backing_servers, admin, names, db, make_task_created
):
    """The process died holding every message in ``<queue>.migrating``, the old queues gone."""
    exchange, queue = names
    topology = ConsumerTopology(queue, DELAYS, 20)
    channel = await admin.channel(publisher_confirms=True)
    events = await declare_exchange(channel, exchange)
    holding = await channel.declare_queue(
        holding_queue(topology), durable=True, arguments={"x-queue-type": "quorum"}
    )
    await holding.bind(events, routing_key="task.*")
    ids = set()
    for _ in range(10):
        entry = make_task_created()
        await events.publish(message(entry), routing_key="task.created")
        ids.add(entry["id"])
    await channel.close()
    recorder = Recorder(ids)
    url = backing_servers.service_amqp_urls.get("analytics", backing_servers.amqp_url)
    async with consumers(url, db, exchange, queue, recorder):
        await recorder.wait()
    recorder.assert_each_once()
    await assert_current_layout(admin, topology)
