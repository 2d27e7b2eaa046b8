"""Events the tasks service publishes and consumes, through real RabbitMQ and MongoDB."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import aio_pika
import httpx
import pytest
from aio_pika.abc import AbstractIncomingMessage
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import TracerProvider
from taskmesh_common.events import (
    OUTBOX_FIELD,
    Envelope,
    EventPublisher,
    OutboxRelay,
    declare_exchange,
    outbox_entry,
)
from taskmesh_common.testing.servers import BackingServers
from taskmesh_common.testing.tokens import TokenFactory
from tasks_service.api.app import create_app

from .conftest import TASKS, User, make_settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tracer_provider() -> TracerProvider:
    """A recording tracer, so trace context is captured and carried (no exporter needed)."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    # The test plugin turns the SDK off (OTEL_SDK_DISABLED) and the provider reads that
    # when built: build this one with it on, then put the variable back.
    previous = os.environ.pop("OTEL_SDK_DISABLED", None)
    try:
        provider = TracerProvider()
    finally:
        if previous is not None:
            os.environ["OTEL_SDK_DISABLED"] = previous
    trace.set_tracer_provider(provider)
    return provider


class Listener:
    """A third-party consumer: its own exclusive queue bound to the service's exchange."""

    def __init__(self) -> None:
        self.messages: list[AbstractIncomingMessage] = []
        self.arrived = asyncio.Event()

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        self.messages.append(message)
        self.arrived.set()
        await message.ack()

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(m.body) for m in self.messages]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self.arrived.clear()
                await self.arrived.wait()


@asynccontextmanager
async def listen(amqp_url: str, exchange: str, pattern: str = "task.#") -> AsyncIterator[Listener]:
    connection = await aio_pika.connect_robust(amqp_url)
    try:
        channel = await connection.channel()
        ex = await declare_exchange(channel, exchange)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(ex, routing_key=pattern)
        listener = Listener()
        await queue.consume(listener.on_message)
        yield listener
    finally:
        await connection.close()


@asynccontextmanager
async def running_app(servers: BackingServers, tokens: TokenFactory, **kwargs: Any) -> Any:
    settings = make_settings(servers)
    app = create_app(settings, verifier=tokens.verifier(), **kwargs)
    async with app.router.lifespan_context(app):
        await app.state.indexes_ready.wait()
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tasks") as client:
            yield app, client


async def test_a_consumer_sees_created_completed_deleted_as_persistent_traced_envelopes(
    backing_servers: BackingServers, tokens: TokenFactory, tracer_provider: TracerProvider
) -> None:
    user = User(tokens)
    tracer = tracer_provider.get_tracer("test")
    async with running_app(backing_servers, tokens) as (app, client):
        exchange = app.state.settings.events_exchange
        async with listen(backing_servers.amqp_url, exchange) as listener:
            with tracer.start_as_current_span("client action") as span:
                # As a gateway would: the trace context travels in the request's headers.
                headers = {**user.headers}
                propagate.inject(headers)
                created = await client.post(TASKS, json={"title": "evented"}, headers=headers)
            trace_id = format(span.get_span_context().trace_id, "032x")
            task_id = created.json()["id"]
            url = f"{TASKS}/{task_id}"
            await client.patch(url, json={"status": "done"}, headers=user.headers)
            await client.delete(url, headers=user.headers)

            await listener.wait_for(lambda: len(listener.messages) >= 3)
            await asyncio.sleep(0.3)  # anything extra would arrive now

    assert [m.routing_key for m in listener.messages] == [
        "task.created",
        "task.completed",
        "task.deleted",
    ]
    for message in listener.messages:
        envelope = Envelope.model_validate_json(message.body)
        assert envelope.subject == task_id
        assert envelope.source == "taskmesh/tasks"
        assert envelope.data_version == 1
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert message.message_id == envelope.id
        assert message.content_type == "application/json"
        headers = message.headers or {}
        traceparent = headers["traceparent"]
        assert isinstance(traceparent, str)
        assert traceparent.startswith("00-")
    versions = [b["data"]["version"] for b in listener.bodies()]
    assert versions == [1, 2, 3]
    completed = listener.bodies()[1]["data"]
    assert completed["status"] == "done" and completed["completed_at"] is not None
    # The relay published later, yet the event continues the trace of the request.
    first_parent = (listener.messages[0].headers or {})["traceparent"]
    assert isinstance(first_parent, str) and first_parent.split("-")[1] == trace_id


async def test_events_recorded_before_a_crash_are_published_exactly_once_on_restart(
    backing_servers: BackingServers, tokens: TokenFactory
) -> None:
    user = User(tokens)
    # run_relay=False: each write is recorded, and the process "dies" before publishing.
    async with running_app(backing_servers, tokens, run_relay=False) as (app, client):
        settings, db = app.state.settings, app.state.db
        async with listen(backing_servers.amqp_url, settings.events_exchange) as listener:
            ids = []
            for n in range(8):
                response = await client.post(TASKS, json={"title": f"t{n}"}, headers=user.headers)
                ids.append(response.json()["id"])
            await client.patch(f"{TASKS}/{ids[0]}", json={"status": "done"}, headers=user.headers)
            await client.delete(f"{TASKS}/{ids[1]}", headers=user.headers)
            await asyncio.sleep(0.5)
            assert listener.messages == []

            recorded = {
                entry["id"]: entry["type"]
                async for doc in db["tasks"].find({})
                for entry in doc.get(OUTBOX_FIELD, [])
            }
            assert len(recorded) == 10

            # Two replicas restart at once: leases keep them from publishing the same event.
            relays = [
                OutboxRelay(
                    db,
                    ["tasks"],
                    EventPublisher(app.state.broker, settings.events_exchange),
                    service="tasks",
                )
                for _ in range(2)
            ]
            for relay in relays:
                relay.start()
            try:
                await listener.wait_for(lambda: len(listener.messages) >= len(recorded))
                await asyncio.sleep(1.0)
            finally:
                for relay in relays:
                    await relay.stop()
                    await relay.publisher.close()

            published = [m.message_id for m in listener.messages]
            assert sorted(published) == sorted(recorded)
            assert {m.message_id: m.routing_key for m in listener.messages} == recorded
            pending = await db["tasks"].count_documents({f"{OUTBOX_FIELD}.0": {"$exists": True}})
            assert pending == 0
            # The deleted task's tombstone went away with its last event.
            assert await db["tasks"].find_one({"_id": ids[1]}) is None


async def test_user_deleted_removes_all_of_that_users_tasks_only(
    backing_servers: BackingServers, tokens: TokenFactory
) -> None:
    leaving, staying = User(tokens), User(tokens)
    async with running_app(backing_servers, tokens) as (app, client):
        for n in range(5):
            await client.post(TASKS, json={"title": f"gone {n}"}, headers=leaving.headers)
        kept = await client.post(TASKS, json={"title": "kept"}, headers=staying.headers)
        await app.state.consumer.ready.wait()

        publisher = EventPublisher(app.state.broker, app.state.settings.events_exchange)
        await publisher.start(timeout=10)
        event = outbox_entry(
            "user.deleted",
            leaving.id,
            {"user_id": leaving.id, "deleted_at": datetime.now(UTC)},
            source="auth",
        )
        try:
            await publisher.publish(event)
            await publisher.publish(event)  # delivered twice: applied once, harmlessly
        finally:
            await publisher.close()

        async with asyncio.timeout(15):
            while (await client.get(TASKS, headers=leaving.headers)).json()["items"]:
                await asyncio.sleep(0.1)
        remaining = (await client.get(TASKS, headers=staying.headers)).json()["items"]
        assert [t["id"] for t in remaining] == [kept.json()["id"]]
        gone = await app.state.db["tasks"].count_documents(
            {"owner_id": leaving.id, "_deleted": {"$ne": True}}
        )
        assert gone == 0
