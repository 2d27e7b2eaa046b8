"""An auth app on the real servers, in-process, with its own database and Redis prefix."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from auth_service.api.app import create_app
from auth_service.config import Settings
from fastapi import FastAPI
from taskmesh_common.mongo import create_mongo_client
from taskmesh_common.testing import random_email, unique_name
from taskmesh_common.testing.servers import BackingServers

PASSWORD = "correct horse battery"
# Cheap Argon2 parameters: the tests exercise the rules, not the cost.
FAST_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "argon2_parallelism": 1}


@pytest.fixture(scope="session")
def events_exchange() -> str:
    # One exchange per test session: unique, without leaving one behind per test.
    return unique_name("auth-events")


@pytest.fixture
def settings(backing_servers: BackingServers, events_exchange: str) -> Settings:
    return make_settings(backing_servers, events_exchange)


def make_settings(servers: BackingServers, exchange: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "mongo_url": servers.mongo_url,
        "mongo_db": unique_name("auth"),
        "amqp_url": servers.amqp_url,
        "redis_url": servers.redis_url,
        "redis_prefix": unique_name("authtest") + ":",
        "events_exchange": exchange,
        "queue_prefix": unique_name("q") + ".",
        "outbox_poll_seconds": 0.1,
        **FAST_ARGON2,
    }
    values.update(overrides)
    return Settings(**values)


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with its lifespan entered, and a client; the database is dropped afterwards."""
    app = create_app(settings)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app), base_url="http://auth.test"
            ) as client,
        ):
            # The broker connects in the background; tests start once it is there.
            await app.state.broker.wait(10)
            yield app, client
    finally:
        mongo = create_mongo_client(settings.mongo_url)
        with contextlib.suppress(Exception):
            await mongo.drop_database(settings.mongo_db)
        await mongo.close()


@pytest.fixture
async def app_client(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with running(settings) as pair:
        yield pair


@pytest.fixture
def client(app_client: tuple[FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    return app_client[1]


@pytest.fixture
def app(app_client: tuple[FastAPI, httpx.AsyncClient]) -> FastAPI:
    return app_client[0]


async def register(
    client: httpx.AsyncClient, email: str | None = None, password: str = PASSWORD, **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": email or random_email(), "password": password, **extra},
    )
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    return user


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


async def registered_session(client: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new user and the tokens of a fresh login."""
    user = await register(client)
    return user, await login(client, user["email"])


def bearer(tokens: dict[str, Any] | str) -> dict[str, str]:
    token = tokens if isinstance(tokens, str) else tokens["access_token"]
    return {"Authorization": f"Bearer {token}"}


async def admin_session(settings: Settings, client: httpx.AsyncClient) -> dict[str, Any]:
    """Tokens of an admin made the way an operator would: by promoting a user in the database."""
    user = await register(client)
    mongo = create_mongo_client(settings.mongo_url)
    try:
        db = mongo[settings.mongo_db]
        await db["users"].update_one({"_id": user["id"]}, {"$set": {"role": "admin"}})
    finally:
        await mongo.close()
    return await login(client, user["email"])
