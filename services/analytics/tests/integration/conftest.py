"""An analytics app on real servers, a publisher on the same (unique) exchange, and events."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from analytics_service.api.app import create_app
from analytics_service.config import Settings
from fastapi import FastAPI
from prometheus_client import REGISTRY
from taskmesh_common.amqp import BrokerConnection, broker_user
from taskmesh_common.events import EventPublisher, outbox_entry
from taskmesh_common.testing import unique_name
from taskmesh_common.testing.servers import BackingServers
from taskmesh_common.testing.tokens import TokenFactory

NOW = datetime.now(UTC).replace(microsecond=0)


def make_settings(servers: BackingServers, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "mongo_url": servers.mongo_url,
        "mongo_db": unique_name("analytics"),
        "amqp_url": servers.amqp_url,
        # Events here are published as that URL's user (the admin), not as auth or tasks.
        "event_publisher_users": dict.fromkeys(("auth", "tasks"), broker_user(servers.amqp_url)),
        "redis_url": servers.redis_url,
        "redis_prefix": unique_name("an") + ":",
        "events_exchange": unique_name("events"),
        "queue_prefix": unique_name("q") + ".",
        # One message at a time: when a later event is applied, every earlier one is too.
        "consumer_prefetch": 1,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class TaskEvents:
    """Envelopes of one task's history, as the tasks service would publish them."""

    owner_id: str
    task_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: datetime = NOW - timedelta(days=2)
    priority: str = "medium"
    due_date: datetime | None = None

    def state(
        self,
        event_type: str,
        version: int,
        status: str = "todo",
        *,
        completed_at: datetime | None = None,
        updated_at: datetime | None = None,
        priority: str | None = None,
    ) -> dict[str, Any]:
        updated = updated_at or self.created_at + timedelta(minutes=version)
        if status == "done" and completed_at is None:
            completed_at = updated
        data = {
            "task_id": self.task_id,
            "owner_id": self.owner_id,
            "version": version,
            "title": f"task {self.task_id[:6]}",
            "status": status,
            "priority": priority or self.priority,
            "due_date": self.due_date,
            "tags": [],
            "created_at": self.created_at,
            "updated_at": updated,
            "completed_at": completed_at,
        }
        return outbox_entry(event_type, self.task_id, data, source="tasks", time=updated)

    def created(self, **kwargs: Any) -> dict[str, Any]:
        return self.state("task.created", 1, **kwargs)

    def completed(self, version: int = 2, **kwargs: Any) -> dict[str, Any]:
        return self.state("task.completed", version, "done", **kwargs)

    def reopened(self, version: int = 3, **kwargs: Any) -> dict[str, Any]:
        return self.state("task.reopened", version, "todo", **kwargs)

    def deleted(self, version: int) -> dict[str, Any]:
        data = {
            "task_id": self.task_id,
            "owner_id": self.owner_id,
            "version": version,
            "deleted_at": self.created_at + timedelta(minutes=version),
        }
        return outbox_entry("task.deleted", self.task_id, data, source="tasks")


def user_deleted(user_id: str) -> dict[str, Any]:
    return outbox_entry(
        "user.deleted", user_id, {"user_id": user_id, "deleted_at": NOW}, source="auth"
    )


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@dataclass
class Analytics:
    """A running analytics app, its client, a publisher, and tokens to call it with."""

    app: FastAPI
    client: httpx.AsyncClient
    publisher: EventPublisher
    tokens: TokenFactory
    settings: Settings

    def headers(self, user_id: str, role: str = "user") -> dict[str, str]:
        return self.tokens.auth_header(user_id, role)

    async def publish(self, *entries: dict[str, Any]) -> None:
        for entry in entries:
            await self.publisher.publish(entry)

    async def applied(self, *entries: dict[str, Any]) -> None:
        """Publish, and return once the consumer has handled every message (each one,
        repeated ids included: the summary must not be read while some wait)."""
        before = self.handled()
        await self.publish(*entries)

        async def done() -> bool:
            return self.handled() >= before + len(entries)

        await eventually(done)

    def handled(self) -> float:
        """Messages the app's consumer applied so far (`events_consumed_total`)."""
        consumer = self.app.state.consumer
        labels = {"service": self.settings.service_name, "queue": consumer.queue}
        return (
            REGISTRY.get_sample_value("events_consumed_total", {**labels, "outcome": "processed"})
            or 0.0
        )

    async def summary(self, user_id: str) -> dict[str, Any]:
        response = await self.client.get("/api/v1/analytics/summary", headers=self.headers(user_id))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def timeline(self, user_id: str, start: str, end: str) -> list[dict[str, Any]]:
        response = await self.client.get(
            "/api/v1/analytics/timeline",
            params={"from": start, "to": end},
            headers=self.headers(user_id),
        )
        assert response.status_code == 200, response.text
        buckets: list[dict[str, Any]] = response.json()["buckets"]
        return buckets


@contextlib.asynccontextmanager
async def running_analytics(settings: Settings) -> AsyncIterator[Analytics]:
    tokens = TokenFactory()
    app = create_app(settings, verifier=tokens.verifier())
    broker = BrokerConnection(settings.amqp_url, name="analytics-test-publisher")
    broker.start()
    publisher = EventPublisher(broker, settings.events_exchange)
    async with app.router.lifespan_context(app):
        await app.state.consumer.start(start_timeout=10)
        assert app.state.consumer.ready.is_set(), "consumer did not start"
        await publisher.start(timeout=10)
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://analytics") as client:
            try:
                yield Analytics(app, client, publisher, tokens, settings)
            finally:
                await publisher.close()
                await app.state.consumer.stop()
                await _remove_topology(broker, app)
                await app.state.mongo.drop_database(settings.mongo_db)
    await broker.close()


async def _remove_topology(broker: BrokerConnection, app: FastAPI) -> None:
    """The shared broker keeps no queues of ours after the test."""
    topology = app.state.consumer.topology
    names = [
        topology.queue,
        topology.dead_letter_queue,
        *(topology.retry_queue(n) for n in range(1, len(topology.retry_delays_ms) + 1)),
    ]
    connection = await broker.wait(5)
    channel = await connection.channel()
    for name in names:
        with contextlib.suppress(Exception):
            await channel.queue_delete(name)
    with contextlib.suppress(Exception):
        await channel.exchange_delete(app.state.settings.events_exchange)
    with contextlib.suppress(Exception):
        await channel.close()


@pytest.fixture
async def analytics(backing_servers: BackingServers) -> AsyncIterator[Analytics]:
    async with running_analytics(make_settings(backing_servers)) as running:
        yield running


@pytest.fixture
def new_user() -> Callable[[], str]:
    return lambda: uuid.uuid4().hex
