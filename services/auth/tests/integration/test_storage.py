"""What auth relies on in MongoDB: TTL indexes for what expires, an index for the login
lookup, and start-up on a database that still has conflicting indexes."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from auth_service.adapters.users import email_filter
from auth_service.domain.model import hash_refresh_token
from auth_service.service_layer.clock import utcnow
from fastapi import FastAPI
from pymongo import ASCENDING
from taskmesh_common.mongo import create_mongo_client
from taskmesh_common.testing.servers import BackingServers

from .conftest import login, make_settings, register, registered_session, running

pytestmark = pytest.mark.integration

REFRESH = "/api/v1/auth/refresh"
# Plan nodes that read through an index: MongoDB's, and PostgreSQL's under DocumentDB.
INDEX_SCANS = {"IXSCAN", "IDHACK", "EXPRESS_IXSCAN", "Index Scan", "Bitmap Index Scan"}
FULL_SCANS = {"COLLSCAN", "Seq Scan"}
OTHER_USERS = 2000


def plan_nodes(plan: Any) -> set[str]:
    """Every stage or node type named anywhere in an explain output."""
    if isinstance(plan, list):
        return set().union(*(plan_nodes(item) for item in plan))
    if not isinstance(plan, dict):
        return set()
    found = {str(plan[key]) for key in ("stage", "Node Type") if key in plan}
    return found.union(*(plan_nodes(value) for value in plan.values()))


async def ttl_indexes(app: FastAPI, collection: str) -> dict[str, int]:
    """Field → expireAfterSeconds of the collection's TTL indexes."""
    info = await app.state.db[collection].index_information()
    return {
        index["key"][0][0]: index["expireAfterSeconds"]
        for index in info.values()
        if "expireAfterSeconds" in index
    }


async def test_expiring_documents_go_by_ttl_indexes(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    # The indexes are made in the background at start: wait for them, not for a login (a
    # write racing the engine's index builds can meet a "deadlock detected" and a 503).
    wanted = {"refresh_tokens": {"expires_at": 0}, "signing_keys": {"retire_after": 0}}
    deadline = time.monotonic() + 60
    while True:
        found = {name: await ttl_indexes(app, name) for name in wanted}
        if found == wanted or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert found == wanted


async def test_expired_refresh_token_is_refused_before_the_ttl_monitor_removes_it(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    user, tokens = await registered_session(client)
    collection = app.state.db["refresh_tokens"]
    live = await collection.find_one({"_id": hash_refresh_token(tokens["refresh_token"])})
    assert live is not None
    expired = "expired-refresh-token-" + user["id"]
    await collection.insert_one(
        {
            "_id": hash_refresh_token(expired),
            "family_id": live["family_id"],
            "user_id": user["id"],
            "created_at": utcnow() - timedelta(days=8),
            "expires_at": utcnow() - timedelta(seconds=1),
            "spent_at": None,
            "revoked": False,
        }
    )
    assert (await client.post(REFRESH, json={"refresh_token": expired})).status_code == 401
    # Refused, not taken for reuse: the live token of the same family still works.
    again = await client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})
    assert again.status_code == 200


async def test_login_finds_the_user_through_the_email_index(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    user = await register(client)
    # Enough other users that reading them all would cost what it costs in life (on a tiny
    # table PostgreSQL rightly prefers reading it whole).
    now = utcnow()
    await app.state.db["users"].insert_many(
        {"_id": f"other-{n}", "email": f"other-{n}@example.com", "created_at": now}
        for n in range(OTHER_USERS)
    )
    explained = await app.state.db.command(
        "explain",
        {"find": "users", "filter": email_filter(user["email"]), "limit": 1},
        verbosity="queryPlanner",
    )
    nodes = plan_nodes(explained)
    assert nodes & INDEX_SCANS and not nodes & FULL_SCANS, explained
    assert "email_unique" in str(explained), explained


async def test_starts_on_a_database_that_has_the_retired_refresh_token_indexes(
    backing_servers: BackingServers, events_exchange: str
) -> None:
    settings = make_settings(backing_servers, events_exchange)
    mongo = create_mongo_client(settings.mongo_url)
    try:
        collection = mongo[settings.mongo_db]["refresh_tokens"]
        await collection.create_index([("parent", ASCENDING)], unique=True, name="parent_unique")
        await collection.create_index([("expires_at", ASCENDING)], name="expiry")
    finally:
        await mongo.close()
    async with running(settings) as (app, client):
        user, first = await registered_session(client)
        second = await login(client, user["email"])
        for tokens in (first, second):
            response = await client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})
            assert response.status_code == 200, response.text
        names = set(await app.state.db["refresh_tokens"].index_information())
        assert not names & {"parent_unique", "expiry"}
        assert await ttl_indexes(app, "refresh_tokens") == {"expires_at": 0}
