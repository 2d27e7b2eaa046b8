"""A forged event: another service's type, from the wrong service, changes nothing.

A compromised tasks service (or anyone holding a broker user that may write to the events
exchange) publishes `user.deleted` for someone else. Consumers accept each event type only
from the service that owns it (`EVENT_OWNERS`): with that service's `source`, and published
by that service's broker user (the `user_id` property, which the broker checks). So the
forgery is dead-lettered by every consumer and the user's tasks and statistics stay, even
when it claims auth's `source` and reaches the events exchange past the topic permissions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import aio_pika
import aiormq
import httpx
import pytest
from faults_client import create_tasks, eventually, list_ids, new_user, record, summary
from faults_stack import Suite
from taskmesh_common.events import outbox_entry
from taskmesh_common.events.dlq import DeadLetter, list_dead_letters
from taskmesh_common.events.envelope import envelope_body
from taskmesh_common.events.topology import PUBLISHER_HEADER
from taskmesh_common.testing.servers import BackingServers
from taskmesh_local import start_servers

from conftest import isolation_env

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


@dataclass
class OwnUsers:
    """A suite whose services each run as their own broker user."""

    suite: Suite
    service_urls: dict[str, str]
    admin_url: str


@pytest.fixture(scope="module")
def own_users(
    request: pytest.FixtureRequest, backing_servers: BackingServers
) -> Iterator[OwnUsers]:
    """The shared suite when the session's broker has the service users, else one on
    throwaway servers of ours (which always have them)."""
    if backing_servers.service_amqp_urls:
        suite = request.getfixturevalue("suite")
        yield OwnUsers(suite, backing_servers.service_amqp_urls, backing_servers.amqp_url)
        return
    with start_servers() as servers:
        suite = Suite({**servers.env(), **isolation_env("forged")})
        try:
            yield OwnUsers(suite, servers.service_amqp_urls, servers.amqp_url)
        finally:
            suite.close()


@pytest.fixture
async def own_users_gateway(own_users: OwnUsers) -> AsyncIterator[httpx.AsyncClient]:
    own_users.suite.ensure_running()
    async with httpx.AsyncClient(base_url=own_users.suite.gateway_url, timeout=20) as client:
        yield client


def foreign_publisher_count(metrics: str, queue: str) -> float:
    """``events_foreign_publisher_total`` of ``queue`` for user.deleted, in a /metrics page."""
    for line in metrics.splitlines():
        if (
            line.startswith("events_foreign_publisher_total{")
            and f'queue="{queue}"' in line
            and 'type="user.deleted"' in line
        ):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_user_deleted_routed_by_tasks_past_the_topic_permissions_is_dead_lettered(
    own_users: OwnUsers, own_users_gateway: httpx.AsyncClient
) -> None:
    """As the tasks broker user: bind the events exchange as the destination of an exchange
    tasks owns and publish auth's `user.deleted` there, with auth's `source`."""
    gateway, suite = own_users_gateway, own_users.suite
    victim = await new_user(gateway, "e2e-victim")
    task_ids = await create_tasks(gateway, victim, 2)
    await eventually(
        lambda: summary(gateway, victim), lambda s: s["total"] == 2, timeout=30, what="counted"
    )
    prefix = suite.env["TASKMESH_QUEUE_PREFIX"]
    queues = (f"{prefix}tasks.user-events", f"{prefix}analytics.events")
    internal = suite.internal_urls
    async with httpx.AsyncClient(timeout=10) as client:
        before = {
            queue: foreign_publisher_count(
                (await client.get(f"{internal[name]}/metrics")).text, queue
            )
            for name, queue in zip(("tasks", "analytics"), queues, strict=True)
        }

    def forgery(**properties: object) -> tuple[dict[str, object], aio_pika.Message]:
        forged = outbox_entry(
            "user.deleted",
            victim.id,
            {"user_id": victim.id, "deleted_at": "2026-01-01T00:00:00Z"},
            source="taskmesh/auth",
        )
        message = aio_pika.Message(
            envelope_body(forged),
            message_id=forged["id"],
            type="user.deleted",
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            **properties,  # type: ignore[arg-type]
        )
        return forged, message

    tasks = await aio_pika.connect(own_users.service_urls["tasks"], timeout=10)
    try:
        channel = await tasks.channel(publisher_confirms=True)
        events = await channel.get_exchange(suite.env["TASKMESH_EVENTS_EXCHANGE"], ensure=False)
        side_door = await channel.declare_exchange(
            f"{prefix}tasks.side-door", aio_pika.ExchangeType.FANOUT, auto_delete=True
        )
        await events.bind(side_door)  # tasks' own exchange now feeds the events exchange
        # Without user_id, as tasks itself (with auth's user as recorded publisher).
        unsigned, message = forgery()
        await side_door.publish(message, routing_key="user.deleted", timeout=10)
        signed, message = forgery(user_id="tasks", headers={PUBLISHER_HEADER: "auth"})
        await side_door.publish(message, routing_key="user.deleted", timeout=10)
        # Claiming to be auth: the broker refuses it.
        _, message = forgery(user_id="auth")
        with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed) as refused:
            await side_door.publish(message, routing_key="user.deleted", timeout=10)
        assert "user_id property set to 'auth'" in str(refused.value)
    finally:
        await tasks.close()

    admin = await aio_pika.connect(own_users.admin_url, timeout=10)
    letters: dict[str, list[str]] = {}
    try:
        for queue in queues:
            found = await eventually(
                lambda q=queue: list_dead_letters(admin, q, limit=1000),
                lambda found: {unsigned["id"], signed["id"]} <= {d.message_id for d in found},
                timeout=30,
                what=f"the forgeries in {queue}.dlq",
            )
            letters[queue] = sorted(
                d.reason or "" for d in found if d.message_id in (unsigned["id"], signed["id"])
            )
    finally:
        await admin.close()

    assert letters == {queue: ["foreign-publisher"] * 2 for queue in queues}
    async with httpx.AsyncClient(timeout=10) as client:
        for name, queue in zip(("tasks", "analytics"), queues, strict=True):
            page = (await client.get(f"{internal[name]}/metrics")).text
            assert foreign_publisher_count(page, queue) == before[queue] + 2, name
    # Both consumers have settled the forgeries: the victim's data is all still there.
    assert set(task_ids) <= set(await list_ids(gateway, victim))
    assert (await summary(gateway, victim))["total"] == 2
    record(
        "user_deleted_past_topic_permissions",
        dead_lettered_by=sorted(letters),
        refused_user_id="auth",
        tasks_kept=len(task_ids),
    )
