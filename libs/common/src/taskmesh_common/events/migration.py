"""Moving a consumer's queues to the current layout when they exist with other arguments.

A queue's arguments cannot change: redeclaring one with another ``x-dead-letter-exchange``
(the default exchange of older releases, see ``ConsumerTopology``), delivery limit or retry
delay fails with PRECONDITION_FAILED. At start a consumer calls :func:`migrate_old_layout`.
When its main or a retry queue differs, or ``<queue>.migrating`` shows an interrupted
migration, it moves the messages to queues of the current layout, with no manual step:

1. take the lock, the exclusive queue ``<queue>.migrating-lock``: another replica starting
   at the same time gets RESOURCE_LOCKED, waits, then finds nothing left to do;
2. declare ``<queue>.migrating`` (quorum), bound to the events exchange with the consumer's
   routing keys, so nothing published from now on is missed;
3. wait until the old main queue has no consumer (replicas of an older release still on it
   settle or give back their messages as they stop);
4. unbind the old main queue from the events exchange; move each old retry queue's messages
   into ``<queue>.migrating`` and delete it; then the same for the old main queue;
5. declare the current layout (``ConsumerTopology.declare``);
6. unbind ``<queue>.migrating``, move its messages into the main queue, delete it.

Each move publishes with confirms (through the consumer's requeue exchange) before it
acks, so a crash repeats a message rather than losing it, and each step can run again, so
the next start resumes an interrupted migration. Events published during steps 2 to 6
reach the consumer twice; it applies them once (dedupe on the event id, or a handler
idempotent by itself). Moved retry messages come back at once instead of after their
delay. The dead-letter queue keeps its arguments and its messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange
from aiormq.exceptions import (
    ChannelLockedResource,
    ChannelNotFoundEntity,
    ChannelPreconditionFailed,
)

from taskmesh_common.amqp import broker_user
from taskmesh_common.events.forwarding import copy_message, forwarded_headers
from taskmesh_common.events.topology import ConsumerTopology, declare_exchange

__all__ = ["holding_queue", "lock_queue", "migrate_old_layout"]

logger = logging.getLogger("taskmesh.events.migration")

_POLL_SECONDS = 0.5


def holding_queue(topology: ConsumerTopology) -> str:
    """The queue holding the messages while the consumer's queues are replaced."""
    return f"{topology.queue}.migrating"


def lock_queue(topology: ConsumerTopology) -> str:
    return f"{topology.queue}.migrating-lock"


async def migrate_old_layout(
    url: str, topology: ConsumerTopology, exchange: str, routing_keys: Sequence[str]
) -> bool:
    """Move ``topology``'s queues to their current arguments if needed; True if this call did.

    Uses a connection of its own (``url``): the lock is held per connection, and the
    robust connection of the service must not restore the temporary queues.
    """
    connection = await aio_pika.connect(url, timeout=10)
    async with connection:
        if not await _needs_migration(connection, topology):
            return False
        async with _lock(connection, topology):
            if not await _needs_migration(connection, topology):
                logger.info("queues already migrated", extra={"queue": topology.queue})
                return False
            await _migrate(connection, topology, exchange, routing_keys, broker_user(url))
        return True


async def _needs_migration(connection: AbstractConnection, topology: ConsumerTopology) -> bool:
    if await _exists(connection, holding_queue(topology)):
        return True
    return bool(await _other_arguments(connection, topology))


async def _other_arguments(connection: AbstractConnection, topology: ConsumerTopology) -> list[str]:
    """The retry queues, then the main queue, that exist with other arguments."""
    arguments = topology.arguments()
    return [
        name
        for name in [*topology.retry_queues(), topology.queue]
        if await _exists(connection, name)
        and not await _declares(connection, name, arguments[name])
    ]


async def _exists(connection: AbstractConnection, name: str) -> bool:
    channel = await connection.channel()
    try:
        await channel.declare_queue(name, passive=True)
    except ChannelNotFoundEntity:
        return False
    finally:
        await _close(channel)
    return True


async def _declares(connection: AbstractConnection, name: str, arguments: dict[str, Any]) -> bool:
    """Whether ``name`` can be declared with ``arguments`` (a refusal closes the channel)."""
    channel = await connection.channel()
    try:
        await channel.declare_queue(name, durable=True, arguments=arguments)
    except ChannelPreconditionFailed:
        return False
    finally:
        await _close(channel)
    return True


async def _close(channel: AbstractChannel) -> None:
    if not channel.is_closed:
        await channel.close()


@contextlib.asynccontextmanager
async def _lock(connection: AbstractConnection, topology: ConsumerTopology) -> AsyncIterator[None]:
    name = lock_queue(topology)
    waiting = False
    while True:
        channel = await connection.channel()
        try:
            await channel.declare_queue(name, exclusive=True)
            break
        except ChannelLockedResource:
            if not waiting:
                logger.info(
                    "another replica is migrating the queues, waiting", extra={"queue": name}
                )
                waiting = True
            await asyncio.sleep(_POLL_SECONDS)
    logger.info("migration lock taken", extra={"queue": name})
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            await channel.queue_delete(name)
        await _close(channel)


async def _migrate(
    connection: AbstractConnection,
    topology: ConsumerTopology,
    exchange_name: str,
    routing_keys: Sequence[str],
    user: str,
) -> None:
    old = await _other_arguments(connection, topology)
    holding = holding_queue(topology)
    logger.info(
        "migrating queues to the current layout", extra={"queue": topology.queue, "old": old}
    )
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    try:
        events = await declare_exchange(channel, exchange_name)
        requeue = await topology.declare_requeue_exchange(channel)
        queue = await channel.declare_queue(
            holding, durable=True, arguments={"x-queue-type": "quorum"}
        )
        await queue.bind(requeue, routing_key=holding)
        for key in routing_keys:
            await queue.bind(events, routing_key=key)
        logger.info("holding queue bound to the events exchange", extra={"queue": holding})

        if topology.queue in old:
            await _until_no_consumer(channel, topology.queue)
            main = await channel.get_queue(topology.queue, ensure=False)
            for key in routing_keys:
                await main.unbind(events, routing_key=key)
            logger.info("old main queue unbound", extra={"queue": topology.queue})
        for name in old:  # the retry queues first: they dead-letter into the main queue
            await _move_all(channel, requeue, name, holding, user)
            await channel.queue_delete(name)
            logger.info("old queue deleted", extra={"queue": name})

        await topology.declare(channel, events, routing_keys)
        logger.info("current layout declared", extra={"queue": topology.queue})
        for key in routing_keys:
            await queue.unbind(events, routing_key=key)
        await _move_all(channel, requeue, holding, topology.queue, user)
        await channel.queue_delete(holding)
        logger.info("migration done, holding queue deleted", extra={"queue": holding})
    finally:
        await _close(channel)


async def _until_no_consumer(channel: AbstractChannel, name: str) -> None:
    waiting = False
    while True:
        declared = await channel.declare_queue(name, passive=True)
        if not declared.declaration_result.consumer_count:
            return
        if not waiting:
            logger.info("waiting for the old main queue's consumers to stop", extra={"queue": name})
            waiting = True
        await asyncio.sleep(_POLL_SECONDS)


async def _move_all(
    channel: AbstractChannel, requeue: AbstractExchange, source: str, target: str, user: str
) -> None:
    """Move every message of ``source`` into ``target``, each acked once the broker confirmed
    its copy; returns when ``source`` is empty. The copies are published as ``user`` (the
    connection's), the publisher of each recorded in a header (``ownership``)."""
    queue = await channel.get_queue(source, ensure=False)
    moved = 0
    while True:
        message = await queue.get(no_ack=False, fail=False, timeout=10)
        if message is None:
            declared = await channel.declare_queue(source, passive=True)
            if not declared.declaration_result.message_count:
                break
            await asyncio.sleep(_POLL_SECONDS)  # given back by a closing channel, not ready yet
            continue
        headers = forwarded_headers(message, (user, requeue.name))
        copy = copy_message(message, headers, user_id=user)
        await requeue.publish(copy, routing_key=target, mandatory=True, timeout=10)
        await message.ack()
        moved += 1
    logger.info("messages moved", extra={"from": source, "to": target, "count": moved})
