"""Revoked tokens and deleted owners at the tasks service itself (no gateway in front)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from taskmesh_common.events import EventPublisher, outbox_entry
from taskmesh_common.security import Revoker
from taskmesh_common.testing import unique_name
from taskmesh_common.testing.servers import BackingServers
from taskmesh_common.testing.tokens import TokenFactory
from tasks_service.api.app import create_app
from tasks_service.config import Settings
from tasks_service.service_layer.tasks import Draft

from .conftest import TASKS, make_settings

# A port nothing listens on: Redis "away".
UNREACHABLE = "redis://127.0.0.1:1/0"

pytestmark = pytest.mark.integration


def now_ms() -> int:
    return round(time.time() * 1000)


def header(tokens: TokenFactory, user_id: str, role: str = "user") -> dict[str, str]:
    # Issued a moment ago, as a token in use is.
    return tokens.auth_header(user_id, role, iat=(now_ms() - 5) / 1000)


async def revoke(app: FastAPI, user_id: str) -> None:
    prefix = app.state.settings.redis_prefix
    redis = app.state.revocations._redis
    await Revoker(redis, prefix=prefix, ttl_seconds=60).revoke_user(user_id, now_ms())


async def test_a_revoked_token_cannot_write(
    app: FastAPI, client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    user_id = unique_name("user")
    headers = header(tokens, user_id)
    created = await client.post(TASKS, json={"title": "before"}, headers=headers)
    assert created.status_code == 201, created.text
    task = created.json()["id"]
    await revoke(app, user_id)
    for method, url, body in (
        ("POST", TASKS, {"title": "after"}),
        ("PATCH", f"{TASKS}/{task}", {"title": "after"}),
        ("DELETE", f"{TASKS}/{task}", None),
    ):
        refused = await client.request(method, url, json=body, headers=headers)
        assert refused.status_code == 401, (method, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
    # A token from after the revocation (a refresh) writes again.
    fresh = tokens.auth_header(user_id, iat=now_ms() / 1000)
    assert (await client.post(TASKS, json={"title": "again"}, headers=fresh)).status_code == 201


async def test_a_demoted_admins_token_loses_the_owner_filter_and_other_users_tasks(
    app: FastAPI, client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    owner, admin_id = unique_name("user"), unique_name("admin")
    task = await client.post(TASKS, json={"title": "private"}, headers=header(tokens, owner))
    task_id = task.json()["id"]
    admin = header(tokens, admin_id, "admin")
    listed = await client.get(TASKS, params={"owner_id": owner}, headers=admin)
    assert [t["id"] for t in listed.json()["items"]] == [task_id]
    assert (await client.get(f"{TASKS}/{task_id}", headers=admin)).status_code == 200

    await revoke(app, admin_id)  # what auth does on a role change
    listed = await client.get(TASKS, params={"owner_id": owner}, headers=admin)
    assert listed.status_code == 401, listed.text
    assert (await client.get(f"{TASKS}/{task_id}", headers=admin)).status_code == 401
    # The same token still reads its own tasks at the service (the gateway refuses it).
    assert (await client.get(TASKS, headers=admin)).status_code == 200


async def publish_user_deleted(app: FastAPI, owner: str) -> None:
    await app.state.consumer.ready.wait()
    publisher = EventPublisher(app.state.broker, app.state.settings.events_exchange)
    await publisher.start(timeout=10)
    event = outbox_entry(
        "user.deleted",
        owner,
        {"user_id": owner, "deleted_at": datetime.now(UTC)},
        source="taskmesh/auth",
    )
    try:
        await publisher.publish(event)
    finally:
        await publisher.close()


async def live_tasks(app: FastAPI, owner: str) -> int:
    query = {"owner_id": owner, "_deleted": {"$ne": True}}
    count: int = await app.state.db["tasks"].count_documents(query)
    return count


async def until_no_tasks(app: FastAPI, owner: str) -> None:
    async with asyncio.timeout(30):
        while await live_tasks(app, owner):
            await asyncio.sleep(0.1)


@asynccontextmanager
async def started(settings: Settings, tokens: TokenFactory) -> AsyncIterator[FastAPI]:
    app = create_app(settings, verifier=tokens.verifier())
    async with app.router.lifespan_context(app):
        await app.state.indexes_ready.wait()
        yield app


async def test_a_deleted_owners_tasks_go_including_a_create_that_lands_after_the_event(
    backing_servers: BackingServers, tokens: TokenFactory
) -> None:
    settings = make_settings(backing_servers, owner_sweep_again_seconds=1.0)
    owner = unique_name("user")
    async with started(settings, tokens) as app:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://tasks"
        ) as client:
            made = await client.post(TASKS, json={"title": "before"}, headers=header(tokens, owner))
            assert made.status_code == 201
            await publish_user_deleted(app, owner)
            await until_no_tasks(app, owner)
            # A create that passed its token check before auth revoked the token, and whose
            # insert lands only now, after the event was applied.
            await app.state.tasks.create(owner, Draft(title="straggler"))
            assert await live_tasks(app, owner) == 1
            await until_no_tasks(app, owner)  # the second sweep, a second later


async def test_with_redis_away_a_deleted_owners_create_is_refused_and_undone(
    app: FastAPI, settings: Settings, tokens: TokenFactory
) -> None:
    owner = unique_name("user")
    headers = header(tokens, owner)
    await publish_user_deleted(app, owner)
    async with asyncio.timeout(30):
        while not await app.state.tasks.removed.contains(owner):
            await asyncio.sleep(0.1)
    # A replica that cannot reach Redis lets the (unrevoked-looking) token write: it then
    # checks the owner's removal mark itself.
    away = settings.model_copy(update={"redis_url": UNREACHABLE})
    async with started(away, tokens) as blind:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(blind), base_url="http://tasks"
        ) as client:
            late = await client.post(TASKS, json={"title": "late"}, headers=headers)
            assert late.status_code == 403, late.text
            assert late.headers["content-type"] == "application/problem+json"
            keyed = await client.post(
                TASKS, json={"title": "keyed"}, headers={**headers, "Idempotency-Key": "k1"}
            )
            assert keyed.status_code == 403, keyed.text
            # Another owner's writes go on, unchecked.
            other = header(tokens, unique_name("user"))
            assert (await client.post(TASKS, json={"title": "x"}, headers=other)).status_code == 201
    assert await live_tasks(app, owner) == 0
