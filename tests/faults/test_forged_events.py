"""A forged event: another service's type with the wrong `source` changes nothing.

A compromised tasks service (or anyone holding a broker user that may write to the events
exchange) publishes `user.deleted` for someone else. Consumers accept each event type only
from the service that owns it (`EVENT_OWNERS`), so the forgery is dead-lettered by every
consumer and the user's tasks and statistics stay.
"""

from __future__ import annotations

import aio_pika
import httpx
import pytest
from faults_client import create_tasks, eventually, list_ids, new_user, record, summary
from faults_stack import Suite
from taskmesh_common.events import outbox_entry
from taskmesh_common.events.dlq import DeadLetter, list_dead_letters
from taskmesh_common.events.envelope import envelope_body
from taskmesh_common.testing.servers import BackingServers

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


async def _dead_letters_about(
    connection: aio_pika.abc.AbstractConnection, queue: str, event_id: str
) -> list[DeadLetter]:
    return [d for d in await list_dead_letters(connection, queue) if d.message_id == event_id]


async def test_a_forged_user_deleted_from_tasks_is_dead_lettered_and_deletes_nothing(
    gateway: httpx.AsyncClient, suite: Suite, backing_servers: BackingServers
) -> None:
    victim = await new_user(gateway, "victim")
    task_ids = await create_tasks(gateway, victim, 2)
    await eventually(
        lambda: summary(gateway, victim), lambda s: s["total"] == 2, timeout=30, what="counted"
    )

    forged = outbox_entry(
        "user.deleted",
        victim.id,
        {"user_id": victim.id, "deleted_at": "2026-01-01T00:00:00Z"},
        source="tasks",
    )
    prefix = suite.env["TASKMESH_QUEUE_PREFIX"]
    queues = (f"{prefix}tasks.user-events", f"{prefix}analytics.events")
    connection = await aio_pika.connect(backing_servers.amqp_url, timeout=10)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(suite.env["TASKMESH_EVENTS_EXCHANGE"])
        await exchange.publish(
            aio_pika.Message(
                envelope_body(forged),
                message_id=forged["id"],
                type="user.deleted",
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key="user.deleted",
        )
        letters = {}
        for queue in queues:
            found = await eventually(
                lambda q=queue: _dead_letters_about(connection, q, forged["id"]),
                lambda found: len(found) == 1,
                timeout=30,
                what=f"the forgery in {queue}.dlq",
            )
            letters[queue] = found[0].reason
    finally:
        await connection.close()

    assert set(letters.values()) == {"foreign-source"}, letters
    # Both consumers have settled the forgery: the victim's data is all still there.
    assert set(task_ids) <= set(await list_ids(gateway, victim))
    assert (await summary(gateway, victim))["total"] == 2
    record("forged_user_deleted", dead_lettered_by=sorted(letters), tasks_kept=len(task_ids))
