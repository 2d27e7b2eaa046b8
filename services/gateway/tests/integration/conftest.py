"""Real upstreams for the gateway: small aiohttp servers on free 127.0.0.1 ports.

Each fake service echoes what it received (method, path, query, headers, body), can answer
with any status (`?status=503`), with a `Retry-After` (`?retry_after=7`), slowly (`?delay=2`), gzipped, or with a `Location` at its own
address (`?redirect=/path`); it counts its calls so tests can prove the gateway did not call it. The auth fake serves the test's JWKS.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aiohttp import web
from fastapi import FastAPI
from gateway_service.api.app import create_app
from gateway_service.config import Settings
from taskmesh_common.testing import unique_name
from taskmesh_common.testing.servers import BackingServers
from taskmesh_common.testing.tokens import TokenFactory


@dataclass
class FakeService:
    name: str
    url: str = ""
    calls: Counter[str] = field(default_factory=Counter)

    def total_calls(self) -> int:
        return sum(self.calls.values())


def _openapi(name: str) -> dict[str, Any]:
    item = {"get": {"operationId": f"{name}_list", "responses": {"200": {"description": "ok"}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": name, "version": "1"},
        "paths": {f"/api/v1/{name}/things": item, "/internal/only": item},
        "components": {"schemas": {"Thing": {"type": "object", "title": name}}},
    }


def _echo_app(service: FakeService, tokens: TokenFactory) -> web.Application:
    async def jwks(_request: web.Request) -> web.Response:
        return web.json_response(await tokens.jwks())

    async def openapi(_request: web.Request) -> web.Response:
        return web.json_response(_openapi(service.name))

    async def echo(request: web.Request) -> web.StreamResponse:
        service.calls[request.path] += 1
        delay = float(request.query.get("delay", "0"))
        if delay:
            await asyncio.sleep(delay)
        size = int(request.query.get("size", "0"))
        body = {
            "service": service.name,
            "method": request.method,
            "path": request.raw_path.split("?")[0],
            "query": request.raw_path.partition("?")[2],
            "headers": [[k, v] for k, v in request.headers.items()],
            "body": (await request.read()).decode("utf-8", "replace"),
            "padding": "x" * size,
        }
        status = int(request.query.get("status", "200"))
        headers = {"X-Upstream": service.name, "Keep-Alive": "timeout=5"}
        if "retry_after" in request.query:
            headers["Retry-After"] = request.query["retry_after"]
        if "redirect" in request.query:
            # An absolute URL at the fake's own address, as a framework builds it.
            headers["Location"] = service.url + request.query["redirect"]
        raw = json.dumps(body).encode()
        if request.query.get("gzip"):
            raw = gzip.compress(raw)
            headers["Content-Encoding"] = "gzip"
        return web.Response(
            body=raw, status=status, headers=headers, content_type="application/json"
        )

    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_get("/.well-known/jwks.json", jwks)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def tokens() -> TokenFactory:
    return TokenFactory()


@pytest.fixture(scope="session")
async def fakes(tokens: TokenFactory) -> AsyncIterator[dict[str, FakeService]]:
    services = {name: FakeService(name) for name in ("auth", "tasks", "analytics")}
    runners = []
    for service in services.values():
        runner = web.AppRunner(_echo_app(service, tokens), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        service.url = f"http://127.0.0.1:{port}"
        runners.append(runner)
    yield services
    for runner in runners:
        await runner.cleanup()


@dataclass
class Gateway:
    app: FastAPI
    client: httpx.AsyncClient
    # The internal listener's app (/metrics, detailed /readyz), never the public port's.
    internal: httpx.AsyncClient

    def client_from(self, ip: str) -> httpx.AsyncClient:
        """Another client, seen by the gateway as coming from `ip` (close it after use)."""
        transport = httpx.ASGITransport(self.app, client=(ip, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://gateway")


GatewayFactory = Callable[..., AbstractAsyncContextManager[Gateway]]


@pytest.fixture
def gateway(backing_servers: BackingServers, fakes: dict[str, FakeService]) -> GatewayFactory:
    """`async with gateway(**settings) as gw:` a started gateway, driven in-process.

    Every gateway gets its own Redis key prefix, so limits never leak between tests.
    Generous limits by default; tests of the limiter set their own.
    """

    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[Gateway]:
        values: dict[str, Any] = {
            "env": "test",
            "redis_url": backing_servers.redis_url,
            "redis_prefix": unique_name("gw") + ":",
            "auth_url": fakes["auth"].url,
            "tasks_url": fakes["tasks"].url,
            "analytics_url": fakes["analytics"].url,
            "rate_limit_user": "1000/minute",
            "rate_limit_anon": "1000/minute",
            "rate_limit_auth": "1000/minute",
        }
        values.update(overrides)
        app = create_app(Settings(**values))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app, client=("10.0.0.1", 40000))
            internal = httpx.ASGITransport(app.state.internal)
            async with (
                httpx.AsyncClient(transport=transport, base_url="http://gateway") as client,
                httpx.AsyncClient(transport=internal, base_url="http://internal") as inside,
            ):
                yield Gateway(app, client, inside)

    return start
