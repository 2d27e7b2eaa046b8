"""The outbox: user events reach the exchange; a deleted user's tombstone goes once published."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import httpx
import pytest
from auth_service.config import Settings
from fastapi import FastAPI
from taskmesh_common.testing.servers import BackingServers

from .conftest import PASSWORD, admin_session, bearer, login, register

pytestmark = pytest.mark.integration


@pytest.fixture
async def user_events(
    backing_servers: BackingServers, settings: Settings
) -> AsyncIterator[aio_pika.abc.AbstractQueue]:
    connection = await aio_pika.connect_robust(backing_servers.amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            settings.events_exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, "user.*")
        yield queue


async def received_for(queue: aio_pika.abc.AbstractQueue, user_id: str, count: int) -> list[Any]:
    """The first `count` messages about `user_id` (others, from other tests, are skipped)."""
    found: list[Any] = []
    async with asyncio.timeout(15), queue.iterator() as messages:
        async for message in messages:
            async with message.process():
                body = json.loads(message.body)
                if body["subject"] == user_id:
                    found.append((message, body))
                    if len(found) == count:
                        return found
    return found


async def test_outbox_publishes_user_registered_and_user_deleted(
    client: httpx.AsyncClient, user_events: aio_pika.abc.AbstractQueue
) -> None:
    user = await register(client, display_name="Eve")
    tokens = await login(client, user["email"])
    assert (
        await client.request(
            "DELETE", "/api/v1/auth/me", json={"password": PASSWORD}, headers=bearer(tokens)
        )
    ).status_code == 204

    (m1, registered), (m2, deleted) = await received_for(user_events, user["id"], 2)
    assert registered["type"] == "user.registered" and m1.routing_key == "user.registered"
    assert registered["source"] == "taskmesh/auth" and registered["data_version"] == 1
    assert registered["data"]["user_id"] == user["id"]
    assert registered["data"]["email"] == user["email"]
    assert registered["data"]["role"] == "user"
    assert deleted["type"] == "user.deleted" and deleted["data"]["user_id"] == user["id"]
    assert m1.message_id == registered["id"] and m2.message_id == deleted["id"]
    assert m2.delivery_mode == aio_pika.DeliveryMode.PERSISTENT


async def test_tombstone_is_removed_once_its_events_are_published(
    settings: Settings,
    app: FastAPI,
    client: httpx.AsyncClient,
    user_events: aio_pika.abc.AbstractQueue,
) -> None:
    user = await register(client)
    tokens = await login(client, user["email"])
    await client.request(
        "DELETE", "/api/v1/auth/me", json={"password": PASSWORD}, headers=bearer(tokens)
    )
    await received_for(user_events, user["id"], 2)
    users = app.state.db["users"]
    for _ in range(50):
        if await users.count_documents({"_id": user["id"]}) == 0:
            break
        await asyncio.sleep(0.1)
    assert await users.count_documents({"_id": user["id"]}) == 0


async def test_admin_changes_publish_role_changed_and_disabled(
    settings: Settings, client: httpx.AsyncClient, user_events: aio_pika.abc.AbstractQueue
) -> None:
    admin = await admin_session(settings, client)
    user = await register(client)
    await client.patch(
        f"/api/v1/auth/users/{user['id']}",
        json={"role": "admin", "disabled": True},
        headers=bearer(admin),
    )
    events = [body for _m, body in await received_for(user_events, user["id"], 3)]
    by_type = {e["type"]: e["data"] for e in events}
    assert by_type["user.role_changed"]["role"] == "admin"
    assert by_type["user.role_changed"]["previous_role"] == "user"
    assert by_type["user.disabled"]["disabled"] is True


async def test_concurrent_role_changes_publish_a_history_without_gaps(
    settings: Settings, client: httpx.AsyncClient, user_events: aio_pika.abc.AbstractQueue
) -> None:
    admin = await admin_session(settings, client)
    user = await register(client)
    url = f"/api/v1/auth/users/{user['id']}"
    roles = ["admin", "user"] * 4
    responses = await asyncio.gather(
        *(client.patch(url, json={"role": role}, headers=bearer(admin)) for role in roles)
    )
    assert {r.status_code for r in responses} <= {200, 409}, [r.text for r in responses]
    # A last change whose event closes the history: a user's events are published in order.
    await client.patch(url, json={"disabled": True}, headers=bearer(admin))
    history: list[dict[str, Any]] = []
    async with asyncio.timeout(15), user_events.iterator() as messages:
        async for message in messages:
            async with message.process():
                body = json.loads(message.body)
                if body["subject"] != user["id"]:
                    continue
                if body["type"] == "user.disabled":
                    break
                if body["type"] == "user.role_changed":
                    history.append(body["data"])
    # Each change names the role the one before it set: none was computed from a stale read.
    assert history, "no role change published"
    role = "user"
    for change in history:
        assert change["previous_role"] == role and change["role"] != role, history
        role = change["role"]
    stored = await client.get("/api/v1/auth/users", params={"limit": "100"}, headers=bearer(admin))
    assert {u["id"]: u["role"] for u in stored.json()["items"]}[user["id"]] == role
