"""End-to-end: the four services as processes on free ports, driven through the gateway URL.

One suite per test session, with telemetry on: the event envelopes carry a `traceparent`
only when a trace exists, and the tracing test needs the spans anyway (measured: tracing
on costs this folder about a second, well below a second suite's start-up). Spans go to the
Jaeger that `make test` started (TASKMESH_JAEGER_URL), else to one started here.

Everything else is isolated by one unique name: database prefix, exchange, queue prefix,
Redis prefix. Tests talk to the gateway only (`api.client`), except where a test proves a
service refuses a forged token on its own.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from pymongo import MongoClient
from taskmesh_common.testing import random_email, unique_name
from taskmesh_common.testing.servers import BackingServers
from taskmesh_local import RunningServices, start_servers, start_services, web_console

# --import-mode=importlib puts no test folder on sys.path: make the helpers (browser.py)
# importable.
sys.path.insert(0, str(Path(__file__).parent))

T = TypeVar("T")

PASSWORD = "correct horse battery"
ADMIN_EMAIL = "admin@e2e.example.com"
ADMIN_PASSWORD = "admin password for e2e"
HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


@dataclass(frozen=True)
class Tracing:
    jaeger_url: str
    otlp_http_endpoint: str


@dataclass
class Suite:
    name: str
    running: RunningServices
    env: dict[str, str]
    backing: BackingServers
    tracing: Tracing

    @property
    def gateway_url(self) -> str:
        return self.running.gateway_url

    @property
    def urls(self) -> dict[str, str]:
        return self.running.urls

    @property
    def exchange(self) -> str:
        return self.env["TASKMESH_EVENTS_EXCHANGE"]


@pytest.fixture(scope="session")
def tracing() -> Iterator[Tracing]:
    jaeger = os.environ.get("TASKMESH_JAEGER_URL")
    otlp = os.environ.get("TASKMESH_OTLP_HTTP_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if jaeger and otlp:
        yield Tracing(jaeger, otlp)
        return
    with start_servers(jaeger=True) as servers:
        assert servers.jaeger_url and servers.otlp_http_endpoint
        yield Tracing(servers.jaeger_url, servers.otlp_http_endpoint)


def suite_env(backing: BackingServers, tracing: Tracing, name: str) -> dict[str, str]:
    return {
        "TASKMESH_MONGO_URL": backing.mongo_url,
        "TASKMESH_AMQP_URL": backing.amqp_url,
        "TASKMESH_REDIS_URL": backing.redis_url,
        "TASKMESH_MONGO_DB_PREFIX": f"{name}_",
        "TASKMESH_EVENTS_EXCHANGE": name,
        "TASKMESH_QUEUE_PREFIX": f"{name}.",
        "TASKMESH_REDIS_PREFIX": f"{name}:",
        # Every test registers accounts from 127.0.0.1; the per-account failure limit stays.
        "TASKMESH_RATE_LIMIT_AUTH": "100000/minute",
        "TASKMESH_BOOTSTRAP_ADMIN_EMAIL": ADMIN_EMAIL,
        "TASKMESH_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
        # Cheap hashes: ~40 registrations and logins would otherwise cost ~30 s of Argon2.
        "TASKMESH_ARGON2_TIME_COST": "1",
        "TASKMESH_ARGON2_MEMORY_KIB": "8192",
        "TASKMESH_ARGON2_PARALLELISM": "1",
        "TASKMESH_LOG_LEVEL": "WARNING",
        "OTEL_SDK_DISABLED": "false",
        "OTEL_EXPORTER_OTLP_ENDPOINT": tracing.otlp_http_endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        # The web console at the gateway's `/` (built once, then from the cache).
        "TASKMESH_CONSOLE_DIR": str(web_console.ensure_console()),
    }


@pytest.fixture(scope="session")
def suite(backing_servers: BackingServers, tracing: Tracing) -> Iterator[Suite]:
    name = unique_name("e2e")
    env = suite_env(backing_servers, tracing, name)
    with start_services(env, timeout=60) as running:
        yield Suite(name, running, env, backing_servers, tracing)


@dataclass
class User:
    id: str
    email: str
    password: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


@dataclass
class Api:
    """A client of the gateway, with the few steps almost every test takes."""

    client: httpx.AsyncClient
    suite: Suite
    _users: list[User] = field(default_factory=list)

    async def register(self, email: str | None = None, password: str = PASSWORD) -> dict[str, Any]:
        response = await self.client.post(
            "/api/v1/auth/register",
            json={"email": email or random_email("e2e"), "password": password},
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def login(self, email: str, password: str = PASSWORD) -> User:
        response = await self.client.post(
            "/api/v1/auth/login", json={"email": email, "password": password}
        )
        assert response.status_code == 200, response.text
        tokens = response.json()
        me = await self.client.get(
            "/api/v1/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert me.status_code == 200, me.text
        return User(
            me.json()["id"], email, password, tokens["access_token"], tokens["refresh_token"]
        )

    async def new_user(self) -> User:
        registered = await self.register()
        return await self.login(registered["email"])

    async def admin(self) -> User:
        return await self.login(ADMIN_EMAIL, ADMIN_PASSWORD)

    async def create_task(self, user: User, **fields: Any) -> dict[str, Any]:
        response = await self.client.post(
            "/api/v1/tasks", json={"title": "a task", **fields}, headers=user.headers
        )
        assert response.status_code == 201, response.text
        task: dict[str, Any] = response.json()
        return task

    async def patch_task(self, user: User, task_id: str, **fields: Any) -> dict[str, Any]:
        response = await self.client.patch(
            f"/api/v1/tasks/{task_id}", json=fields, headers=user.headers
        )
        assert response.status_code == 200, response.text
        task: dict[str, Any] = response.json()
        return task


@pytest.fixture
async def api(suite: Suite) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(base_url=suite.gateway_url, timeout=15) as client:
        yield Api(client, suite)


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """An RFC 9457 answer with this status; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"] and body["title"]
    return body


@pytest.fixture(scope="session")
def problem() -> Callable[[httpx.Response, int], dict[str, Any]]:
    return assert_problem


async def eventually(
    probe: Callable[[], Awaitable[T]], accept: Callable[[T], bool], *, timeout: float = 10.0
) -> T:
    """Polls `probe` until `accept` holds; fails with the last value after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if accept(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still not as expected after {timeout:.0f} s: {value!r}")
        await asyncio.sleep(0.2)


@pytest.fixture(scope="session")
def poll() -> Callable[..., Awaitable[Any]]:
    return eventually


@dataclass(frozen=True)
class Forger:
    """Tokens signed with the suite's own auth key, so that only the claim under test is wrong.

    An attacker does not hold this key; the point is to prove that the claim checks
    (expiry, issuer, audience) refuse a token whose signature is otherwise perfect.
    The key is read from the suite's own auth database.
    """

    kid: str
    private_pem: bytes

    def sign(self, claims: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
        key = serialization.load_pem_private_key(self.private_pem, password=None)
        return jwt.encode(
            claims,
            key,  # type: ignore[arg-type]
            algorithm="EdDSA",
            headers={"kid": self.kid, "typ": "JWT", **(headers or {})},
        )


@pytest.fixture(scope="session")
def forger(suite: Suite) -> Forger:
    client: MongoClient[dict[str, Any]] = MongoClient(
        suite.backing.mongo_url, serverSelectionTimeoutMS=5000
    )
    try:
        keys = client[f"{suite.name}_auth"]["signing_keys"]
        newest = keys.find_one({}, sort=[("generation", -1)])
    finally:
        client.close()
    assert newest is not None, "auth made no signing key"
    return Forger(kid=newest["_id"], private_pem=newest["private_pem"].encode())
