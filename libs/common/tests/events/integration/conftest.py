"""Real RabbitMQ and MongoDB-protocol fixtures for the events library; every name is unique."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pymongo.asynchronous.database import AsyncDatabase
from taskmesh_common.amqp import BrokerConnection
from taskmesh_common.events import OUTBOX_FIELD, EventPublisher, OutboxRelay, outbox_entry
from taskmesh_common.events.outbox import PENDING
from taskmesh_common.events.topology import declare_exchange
from taskmesh_common.mongo import create_mongo_client
from taskmesh_common.testing import unique_name
from taskmesh_common.testing.servers import BackingServers


@pytest.fixture
async def db(backing_servers: BackingServers) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    client = create_mongo_client(backing_servers.mongo_url)
    database = client[unique_name("events")]
    yield database
    await client.drop_database(database.name)
    await client.close()


@pytest.fixture
async def broker(backing_servers: BackingServers) -> AsyncIterator[BrokerConnection]:
    connection = BrokerConnection(backing_servers.amqp_url, name=unique_name("events-test"))
    connection.start()
    await connection.wait(timeout=10)
    yield connection
    await connection.close()


@pytest.fixture
def exchange() -> str:
    return unique_name("test.events")


@pytest.fixture
def queue_name() -> str:
    return unique_name("test-queue")


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> tuple[TracerProvider, InMemorySpanExporter]:
    """A tracer provider of the test's own (the plugin disables the global SDK)."""
    exporter = InMemorySpanExporter()
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


class Spy:
    """A throwaway queue bound to the exchange: what a third-party consumer would see."""

    def __init__(self, queue: AbstractQueue) -> None:
        self.queue = queue
        self.messages: list[AbstractIncomingMessage] = []

    async def collect(self, count: int, timeout: float = 10.0) -> list[AbstractIncomingMessage]:
        async def pull() -> None:
            while len(self.messages) < count:
                message = await self.queue.get(no_ack=True, fail=False)
                if message is None:
                    await asyncio.sleep(0.05)
                else:
                    self.messages.append(message)

        await asyncio.wait_for(pull(), timeout)
        return self.messages

    @staticmethod
    def in_version_order(messages: list[AbstractIncomingMessage]) -> bool:
        """Whether each subject's events arrived in the order of their ``data.version``."""
        versions: dict[str, list[int]] = {}
        for message in messages:
            body = json.loads(message.body)
            versions.setdefault(body["subject"], []).append(body["data"]["version"])
        return all(v == sorted(v) for v in versions.values())

    async def quiet_for(self, seconds: float) -> list[AbstractIncomingMessage]:
        """Everything that arrives within ``seconds`` (to prove nothing more comes)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            message = await self.queue.get(no_ack=True, fail=False)
            if message is None:
                await asyncio.sleep(0.05)
            else:
                self.messages.append(message)
        return self.messages


@pytest.fixture
async def spy(broker: BrokerConnection, exchange: str) -> AsyncIterator[Spy]:
    connection = await broker.wait()
    channel = await connection.channel()
    ex = await declare_exchange(channel, exchange)
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(ex, routing_key="#")
    yield Spy(queue)
    await channel.close()


def task_data(**overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    data: dict[str, Any] = {
        "task_id": unique_name("task"),
        "owner_id": unique_name("user"),
        "version": 1,
        "title": "Write the relay",
        "status": "todo",
        "priority": "high",
        "due_date": None,
        "tags": ["events"],
        "created_at": now,
        "updated_at": now,
        "completed_at": None,
    }
    data.update(overrides)
    return data


def task_created(**overrides: Any) -> dict[str, Any]:
    data = task_data(**overrides)
    return outbox_entry("task.created", data["task_id"], data, source="taskmesh/tasks")


@pytest.fixture
def make_task_created() -> Callable[..., dict[str, Any]]:
    return task_created


@pytest.fixture
def publish_raw(broker: BrokerConnection, exchange: str) -> Callable[..., Any]:
    """Publish arbitrary bytes to the test exchange, as a buggy or foreign producer would."""

    async def publish(routing_key: str, body: bytes, **props: Any) -> None:
        connection = await broker.wait()
        channel = await connection.channel(publisher_confirms=True)
        ex = await declare_exchange(channel, exchange)
        await ex.publish(aio_pika.Message(body=body, **props), routing_key=routing_key)
        await channel.close()

    return publish


@pytest.fixture
def task_docs(make_task_created: Callable[..., dict[str, Any]]) -> Callable[..., list[Any]]:
    """Tasks written the way the tasks service writes them: the event inside the insert.

    ``task_docs(count, updated=n)``: the first ``n`` also hold a second event, a
    ``task.updated`` at version 2, after their ``task.created``.
    """

    def make(count: int, *, updated: int = 0) -> list[dict[str, Any]]:
        docs = []
        for n in range(count):
            entry = make_task_created()
            outbox = [entry]
            if n < updated:
                second = make_task_created(task_id=entry["subject"], version=2)
                second["type"] = "task.updated"
                outbox.append(second)
            docs.append({"_id": entry["subject"], "title": "t", OUTBOX_FIELD: outbox})
        return docs

    return make


@pytest.fixture
def relay_for() -> Callable[..., OutboxRelay]:
    """``relay_for(db, broker, exchange, **options)``: a relay over ``db.tasks``."""

    def make(db: Any, broker: BrokerConnection, exchange: str, **kwargs: Any) -> OutboxRelay:
        kwargs.setdefault("poll_interval", 0.05)
        kwargs.setdefault("scan_interval", 0.05)  # these tests write without naming documents
        kwargs.setdefault("grace_seconds", 0)  # ... and no writer publishes them
        return OutboxRelay(
            db, ["tasks"], EventPublisher(broker, exchange), service="test", **kwargs
        )

    return make


@pytest.fixture
def drained() -> Callable[..., Awaitable[None]]:
    """``await drained(collection)``: returns once no document of ``collection`` holds a
    pending outbox entry (fails after ``timeout`` seconds)."""

    async def wait(collection: Any, timeout: float = 30.0) -> None:
        async def poll() -> None:
            while await collection.count_documents(PENDING):
                await asyncio.sleep(0.05)

        await asyncio.wait_for(poll(), timeout)

    return wait
