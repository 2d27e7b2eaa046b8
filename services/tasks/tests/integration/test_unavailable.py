"""With MongoDB unreachable, requests are a quick 503 with Retry-After, never a 500 or a hang."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from taskmesh_common.testing.servers import BackingServers
from taskmesh_common.testing.tokens import TokenFactory
from tasks_service.api.app import create_app

from .conftest import TASKS, User, make_settings

pytestmark = pytest.mark.integration

# Port 9 (discard) on loopback: nothing listens, connections are refused at once.
UNREACHABLE = "mongodb://127.0.0.1:9/?directConnection=true"


@pytest.fixture(scope="module")
async def dead_mongo_app(
    backing_servers: BackingServers, tokens: TokenFactory
) -> AsyncIterator[FastAPI]:
    settings = make_settings(backing_servers, mongo_url=UNREACHABLE, mongo_timeout_seconds=0.5)
    app = create_app(settings, verifier=tokens.verifier())
    async with app.router.lifespan_context(app):
        yield app


async def test_every_verb_answers_503_with_retry_after_when_mongo_is_down(
    dead_mongo_app: FastAPI, tokens: TokenFactory
) -> None:
    user = User(tokens)
    task_url = f"{TASKS}/00000000-0000-4000-8000-000000000000"
    transport = httpx.ASGITransport(dead_mongo_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tasks") as client:
        for method, url, body in [
            ("POST", TASKS, {"title": "x"}),
            ("GET", TASKS, None),
            ("GET", task_url, None),
            ("PATCH", task_url, {"title": "y"}),
            ("DELETE", task_url, None),
        ]:
            started = time.monotonic()
            response = await client.request(method, url, json=body, headers=user.headers)
            assert response.status_code == 503, (method, url, response.text)
            assert response.headers["Retry-After"] == "2"
            assert response.headers["content-type"] == "application/problem+json"
            assert time.monotonic() - started < 5

        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert "mongo" in ready.json()["failed"]
