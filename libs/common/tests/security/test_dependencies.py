"""CurrentPrincipal and AdminPrincipal as a client sees them: 401/403 problem+json."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from taskmesh_common.errors import install_error_handlers
from taskmesh_common.redis import create_redis
from taskmesh_common.security import (
    AdminPrincipal,
    CurrentPrincipal,
    RevocationCheck,
    TokenVerifier,
)
from taskmesh_common.settings import ServiceSettings
from taskmesh_common.testing import unique_name
from taskmesh_common.testing.http import serving
from taskmesh_common.testing.servers import BackingServers
from taskmesh_common.testing.tokens import TokenFactory


@pytest.fixture
def tokens() -> TokenFactory:
    return TokenFactory()


@pytest.fixture
async def client(
    tokens: TokenFactory, backing_servers: BackingServers
) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_error_handlers(app)
    app.state.verifier = tokens.verifier()
    redis = create_redis(backing_servers.redis_url)
    app.state.revocations = RevocationCheck(redis, prefix=unique_name("deps") + ":")

    @app.get("/me")
    async def me(principal: CurrentPrincipal) -> dict[str, Any]:
        return {"user_id": principal.user_id, "role": principal.role}

    @app.get("/admin")
    async def admin(principal: AdminPrincipal) -> dict[str, Any]:
        return {"user_id": principal.user_id}

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://test"
    ) as client:
        yield client
    await redis.aclose()


async def test_valid_bearer_token_reaches_the_route(
    client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    response = await client.get("/me", headers=tokens.auth_header("u1"))
    assert response.status_code == 200
    assert response.json() == {"user_id": "u1", "role": "user"}


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer"}, {"Authorization": "Basic dTpw"}, {"Authorization": "x"}],
)
async def test_missing_or_malformed_authorization_is_401_with_a_bearer_challenge(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.get("/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["status"] == 401


async def test_forged_token_is_401_invalid_token(
    client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    forged = TokenFactory().token("u1", headers={"kid": tokens.kid})
    response = await client.get("/me", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_admin_route_is_403_for_a_user_and_200_for_an_admin(
    client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    as_user = await client.get("/admin", headers=tokens.auth_header("u1"))
    assert as_user.status_code == 403
    assert as_user.headers["content-type"] == "application/problem+json"
    as_admin = await client.get("/admin", headers=tokens.auth_header("a1", role="admin"))
    assert as_admin.status_code == 200


async def test_verifier_from_settings_fetches_the_jwks_over_http(tokens: TokenFactory) -> None:
    from aiohttp import web

    async def jwks(_request: web.Request) -> web.Response:
        return web.json_response(await tokens.jwks())

    web_app = web.Application()
    web_app.router.add_get("/.well-known/jwks.json", jwks)
    async with serving(web_app) as base:
        verifier = TokenVerifier.from_settings(ServiceSettings(auth_url=f"{base}/"))
        try:
            assert (await verifier.verify(tokens.token("u1"))).user_id == "u1"
        finally:
            await verifier.aclose()
