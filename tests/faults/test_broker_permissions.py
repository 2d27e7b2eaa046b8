"""Least privilege on the broker: a service's own user reaches only what that service owns.

What a compromised tasks service could try with its credentials: publish auth's events on
the events exchange (the broker's topic permissions refuse it), read analytics' queue (its
queue permissions refuse it), and put a forged event straight into analytics' queue by name,
through the default exchange or analytics' requeue exchange (no user may write on either but
the owner of the requeue exchange). What tasks needs still works, so the refusals are the
permissions, not a broken user.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator

import aio_pika
import aiormq
import pytest
from aio_pika.abc import AbstractChannel
from taskmesh_common.events import outbox_entry
from taskmesh_common.events.envelope import envelope_body
from taskmesh_common.events.topology import ConsumerTopology, declare_exchange
from taskmesh_common.testing import unique_name
from taskmesh_common.testing.servers import BackingServers
from taskmesh_local import start_servers

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

# Topic permissions name the exchange itself: the production name.
EXCHANGE = "taskmesh.events"
Step = Callable[[AbstractChannel], Awaitable[None]]


@pytest.fixture(scope="module")
def service_urls(backing_servers: BackingServers) -> Iterator[dict[str, str]]:
    """Each service's own AMQP URL: the session's servers', or throwaway servers' of ours."""
    if backing_servers.service_amqp_urls:
        yield backing_servers.service_amqp_urls
        return
    with start_servers() as servers:
        yield servers.service_amqp_urls


async def attempt(url: str, step: Step) -> str:
    """``ok``, or the broker's refusal (``ACCESS_REFUSED - ...``) of ``step`` as that user."""
    connection = await aio_pika.connect(url, timeout=10)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await step(channel)
        return "ok"
    except aiormq.exceptions.ChannelAccessRefused as exc:
        return str(exc)
    finally:
        await connection.close()


def publish(routing_key: str) -> Step:
    async def step(channel: AbstractChannel) -> None:
        exchange = await declare_exchange(channel, EXCHANGE)
        await exchange.publish(aio_pika.Message(b"{}"), routing_key=routing_key, timeout=10)

    return step


def declare_consumer_queues(queue: str, routing_keys: list[str]) -> Step:
    async def step(channel: AbstractChannel) -> None:
        exchange = await declare_exchange(channel, EXCHANGE)
        await ConsumerTopology(queue, (500,), 20).declare(channel, exchange, routing_keys)

    return step


def publish_into(queue: str, exchange: str = "") -> Step:
    """A forged ``user.deleted`` put into ``queue`` by name (``""``: the default exchange)."""
    forged = outbox_entry(
        "user.deleted",
        "victim",
        {"user_id": "victim", "deleted_at": "2026-01-01T00:00:00Z"},
        source="taskmesh/auth",
    )

    async def step(channel: AbstractChannel) -> None:
        target = channel.default_exchange
        if exchange:
            target = await channel.get_exchange(exchange, ensure=False)
        message = aio_pika.Message(envelope_body(forged), message_id=forged["id"])
        await target.publish(message, routing_key=queue, mandatory=True, timeout=10)

    return step


async def ready_messages(admin_url: str, queue: str) -> int:
    connection = await aio_pika.connect(admin_url, timeout=10)
    try:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return declared.declaration_result.message_count or 0
    finally:
        await connection.close()


def read(queue: str) -> Step:
    async def step(channel: AbstractChannel) -> None:
        await (await channel.get_queue(queue, ensure=False)).get(fail=False)

    return step


async def test_tasks_credentials_cannot_publish_auths_events_or_read_analytics_queue(
    service_urls: dict[str, str],
) -> None:
    tasks, auth, analytics = service_urls["tasks"], service_urls["auth"], service_urls["analytics"]
    prefix = unique_name("perm") + "."
    analytics_queue, tasks_queue = f"{prefix}analytics.events", f"{prefix}tasks.user-events"
    # What each service does for itself is allowed.
    assert await attempt(analytics, declare_consumer_queues(analytics_queue, ["task.*"])) == "ok"
    assert await attempt(tasks, declare_consumer_queues(tasks_queue, ["user.deleted"])) == "ok"
    assert await attempt(tasks, read(tasks_queue)) == "ok"
    assert await attempt(tasks, publish("task.created")) == "ok"
    assert await attempt(auth, publish("user.deleted")) == "ok"

    refusals = {
        "tasks publishes user.deleted": await attempt(tasks, publish("user.deleted")),
        "tasks publishes user.role_changed": await attempt(tasks, publish("user.role_changed")),
        "tasks reads analytics' queue": await attempt(tasks, read(analytics_queue)),
        "tasks reads analytics' dead letters": await attempt(tasks, read(analytics_queue + ".dlq")),
        "tasks binds its queue to task events": await attempt(
            tasks, declare_consumer_queues(tasks_queue, ["task.*"])
        ),
        "auth publishes task.deleted": await attempt(auth, publish("task.deleted")),
        "analytics publishes user.deleted": await attempt(analytics, publish("user.deleted")),
        "auth reads tasks' queue": await attempt(auth, read(tasks_queue)),
    }
    for what, outcome in refusals.items():
        assert outcome.startswith("ACCESS_REFUSED"), f"{what}: {outcome}"


async def test_no_service_can_put_a_message_into_another_services_queue_by_name(
    service_urls: dict[str, str], backing_servers: BackingServers
) -> None:
    tasks, analytics = service_urls["tasks"], service_urls["analytics"]
    prefix = unique_name("byname") + "."
    analytics_queue, tasks_queue = f"{prefix}analytics.events", f"{prefix}tasks.user-events"
    assert await attempt(analytics, declare_consumer_queues(analytics_queue, ["task.*"])) == "ok"
    assert await attempt(tasks, declare_consumer_queues(tasks_queue, ["user.deleted"])) == "ok"
    analytics_topology = ConsumerTopology(analytics_queue, (500,), 20)
    tasks_topology = ConsumerTopology(tasks_queue, (500,), 20)

    refusals = {
        "tasks into analytics' queue": await attempt(tasks, publish_into(analytics_queue)),
        "tasks into analytics' retry queue": await attempt(
            tasks, publish_into(analytics_topology.retry_queue(1))
        ),
        "tasks into analytics' queue by its requeue exchange": await attempt(
            tasks, publish_into(analytics_queue, analytics_topology.requeue_exchange)
        ),
        "tasks into its own queue by the default exchange": await attempt(
            tasks, publish_into(tasks_queue)
        ),
        "analytics into tasks' queue": await attempt(analytics, publish_into(tasks_queue)),
        "analytics into tasks' queue by its requeue exchange": await attempt(
            analytics, publish_into(tasks_queue, tasks_topology.requeue_exchange)
        ),
        "auth into analytics' queue": await attempt(
            service_urls["auth"], publish_into(analytics_queue)
        ),
    }
    for what, outcome in refusals.items():
        assert outcome.startswith("ACCESS_REFUSED"), f"{what}: {outcome}"
    # The forgeries never arrived.
    for queue in (analytics_queue, analytics_topology.retry_queue(1), tasks_queue):
        assert await ready_messages(backing_servers.amqp_url, queue) == 0, queue
