"""Revoked tokens and deleted owners at the tasks service itself (no gateway in front)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from taskmesh_common.events import EventPublisher, outbox_entry
from taskmesh_common.security import Revoker
from taskmesh_common.testing import unique_name
from taskmesh_common.testing.tokens import TokenFactory

from .conftest import TASKS

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


async def test_a_deleted_owners_straggler_task_is_removed_and_later_writes_are_refused(
    app: FastAPI, client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    owner = unique_name("user")
    # Not revoked in Redis: as if Redis was away (fail open) or the write raced auth.
    headers = header(tokens, owner)
    straggler = await client.post(TASKS, json={"title": "in the window"}, headers=headers)
    assert straggler.status_code == 201
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
    async with asyncio.timeout(15):
        while (await client.get(TASKS, headers=headers)).json()["items"]:
            await asyncio.sleep(0.1)

    late = await client.post(TASKS, json={"title": "after the event"}, headers=headers)
    assert late.status_code == 403, late.text
    assert late.headers["content-type"] == "application/problem+json"
    replayed = await client.post(
        TASKS, json={"title": "keyed"}, headers={**headers, "Idempotency-Key": "k1"}
    )
    assert replayed.status_code == 403, replayed.text
    assert (await client.get(TASKS, headers=headers)).json()["items"] == []
    live = await app.state.db["tasks"].count_documents(
        {"owner_id": owner, "_deleted": {"$ne": True}}
    )
    assert live == 0
