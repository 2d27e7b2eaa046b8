"""An in-process tasks app on the real servers, with tokens minted by the test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from taskmesh_common.amqp import broker_user
from taskmesh_common.testing import unique_name
from taskmesh_common.testing.servers import BackingServers
from taskmesh_common.testing.tokens import TokenFactory
from tasks_service.api.app import create_app
from tasks_service.config import Settings

TASKS = "/api/v1/tasks"


def make_settings(servers: BackingServers, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "mongo_url": servers.mongo_url,
        "mongo_db": unique_name("tasks"),
        "amqp_url": servers.amqp_url,
        # Events here are published as that URL's user (the admin), not as auth or tasks.
        "event_publisher_users": dict.fromkeys(("auth", "tasks"), broker_user(servers.amqp_url)),
        "redis_url": servers.redis_url,
        "events_exchange": unique_name("events"),
        "queue_prefix": unique_name("q") + ".",
        **overrides,
    }
    return Settings(**values)


@pytest.fixture(scope="session")
def tokens() -> TokenFactory:
    return TokenFactory()


@pytest.fixture(scope="module")
def settings(backing_servers: BackingServers) -> Settings:
    return make_settings(backing_servers)


@pytest.fixture(scope="module")
async def app(settings: Settings, tokens: TokenFactory) -> AsyncIterator[FastAPI]:
    app = create_app(settings, verifier=tokens.verifier())
    async with app.router.lifespan_context(app):
        await app.state.indexes_ready.wait()
        yield app


@pytest.fixture(scope="module")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tasks") as client:
        yield client


class User:
    """A caller with a fresh id and its bearer header."""

    def __init__(self, tokens: TokenFactory, role: str = "user") -> None:
        self.id = unique_name("user")
        self.headers = tokens.auth_header(self.id, role)

    def with_headers(self, **extra: str) -> dict[str, str]:
        return {**self.headers, **extra}


@pytest.fixture
def make_user(tokens: TokenFactory) -> Callable[..., User]:
    def make(role: str = "user") -> User:
        return User(tokens, role)

    return make


@pytest.fixture
def create_task(
    client: httpx.AsyncClient,
) -> Callable[..., Awaitable[dict[str, Any]]]:
    async def create(user: User, **fields: Any) -> dict[str, Any]:
        body = {"title": unique_name("task"), **fields}
        response = await client.post(TASKS, json=body, headers=user.headers)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    return create
