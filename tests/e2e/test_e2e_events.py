"""The events a third party sees on the suite's exchange, and what duplicates of them change."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage

TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
ENVELOPE_KEYS = {"id", "type", "source", "time", "subject", "data_version", "data"}


@dataclass
class Tap:
    """An outside consumer: its own exclusive queue bound to the suite's exchange."""

    channel: aio_pika.abc.AbstractChannel
    exchange: aio_pika.abc.AbstractExchange
    messages: list[AbstractIncomingMessage] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        self.messages.append(message)
        self.arrived.set()

    def about(self, subject: str) -> list[AbstractIncomingMessage]:
        return [m for m in self.messages if json.loads(m.body).get("subject") == subject]

    async def wait_for(
        self, subject: str, types: set[str], timeout: float = 10.0
    ) -> dict[str, AbstractIncomingMessage]:
        deadline = time.monotonic() + timeout
        while True:
            seen = {m.routing_key: m for m in self.about(subject)}
            if types <= set(seen):
                return {t: seen[t] for t in types}
            left = deadline - time.monotonic()
            assert left > 0, f"only {sorted(seen)} of {sorted(types)} arrived for {subject}"
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), timeout=left)
            except TimeoutError:
                pass


@pytest.fixture
async def tap(suite) -> AsyncIterator[Tap]:
    connection = await aio_pika.connect(suite.backing.amqp_url, timeout=10)
    try:
        channel = await connection.channel()
        exchange = await channel.get_exchange(suite.exchange, ensure=True)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key="task.*")
        await queue.bind(exchange, routing_key="user.*")
        tap = Tap(channel, exchange)
        await queue.consume(tap.on_message, no_ack=True)
        yield tap
    finally:
        await connection.close()


def _traceparent(trace_id: str) -> str:
    return f"00-{trace_id}-{secrets.token_hex(8)}-01"


async def test_third_party_consumer_sees_well_formed_persistent_task_events(api, tap):
    user = await api.new_user()
    trace_id = secrets.token_hex(16)
    traced = user.headers | {"traceparent": _traceparent(trace_id)}
    created = await api.client.post("/api/v1/tasks", json={"title": "watched"}, headers=traced)
    assert created.status_code == 201
    task = created.json()
    url = f"/api/v1/tasks/{task['id']}"
    assert (await api.client.patch(url, json={"status": "done"}, headers=traced)).status_code == 200
    assert (await api.client.delete(url, headers=traced)).status_code == 204

    events = await tap.wait_for(task["id"], {"task.created", "task.completed", "task.deleted"})
    for event_type, message in events.items():
        body = json.loads(message.body)
        assert set(body) == ENVELOPE_KEYS, body
        assert body["type"] == event_type and body["subject"] == task["id"]
        assert body["data_version"] == 1 and body["source"] == "taskmesh/tasks"
        assert body["data"]["task_id"] == task["id"] and body["data"]["owner_id"] == user.id
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert message.message_id == body["id"]
        assert message.content_type == "application/json"
        traceparent = str((message.headers or {}).get("traceparent", ""))
        assert TRACEPARENT.match(traceparent), message.headers
        # The client's trace goes on through the gateway, the service and the outbox.
        assert traceparent.split("-")[1] == trace_id
    versions = [
        json.loads(events[t].body)["data"]["version"]
        for t in ("task.created", "task.completed", "task.deleted")
    ]
    assert versions == [1, 2, 3]
    assert len({json.loads(m.body)["id"] for m in tap.about(task["id"])}) == len(
        tap.about(task["id"])
    )


async def _summary(api, user) -> dict[str, Any]:
    response = await api.client.get("/api/v1/analytics/summary", headers=user.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_an_event_published_again_by_an_outsider_is_counted_once(api, tap, poll):
    user = await api.new_user()
    task = await api.create_task(user, title="counted once", priority="high")
    done = await api.patch_task(user, task["id"], status="done")
    events = await tap.wait_for(task["id"], {"task.created", "task.completed"})
    await poll(lambda: _summary(api, user), lambda s: s["completed"] == 1)

    for _ in range(4):
        for message in events.values():
            await tap.exchange.publish(
                aio_pika.Message(
                    body=message.body,
                    content_type=message.content_type,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    message_id=message.message_id,
                    type=message.type,
                    headers=dict(message.headers or {}),
                ),
                routing_key=message.routing_key or "",
            )
    # A later write of the user's: once it shows, the copies published before it were consumed.
    marker = await api.create_task(user, title="marker", priority="low")
    summary = await poll(lambda: _summary(api, user), lambda s: s["total"] >= 2)
    await asyncio.sleep(0.5)
    summary = await _summary(api, user)
    assert summary["total"] == 2
    assert summary["completed"] == 1
    assert summary["by_priority"]["high"] == 1 and summary["by_priority"]["low"] == 1
    assert summary["by_status"]["done"] == 1 and summary["by_status"]["todo"] == 1
    assert done["completed_at"] and marker["id"]
