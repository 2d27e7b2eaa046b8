"""The one public OpenAPI document, merged from the services' own."""

from __future__ import annotations

import pytest
from aiohttp import web

from .conftest import GatewayFactory

pytestmark = pytest.mark.integration


async def test_openapi_merges_public_paths_of_every_service(gateway: GatewayFactory) -> None:
    async with gateway() as gw:
        response = await gw.client.get("/openapi.json")
        docs = await gw.client.get("/docs")
    document = response.json()
    assert response.status_code == 200
    assert sorted(document["paths"]) == [
        "/api/v1/analytics/things",
        "/api/v1/auth/things",
        "/api/v1/tasks/things",
    ]
    # Each fake names its own `Thing` differently: the later ones are prefixed, refs intact.
    assert {"Thing", "auth_Thing", "tasks_Thing", "Problem"} == set(
        document["components"]["schemas"]
    )
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert document["paths"]["/api/v1/tasks/things"]["get"]["security"] == [{"bearerAuth": []}]
    assert docs.status_code == 200
    assert "/openapi.json" in docs.text


async def test_openapi_keeps_the_last_good_copy_when_a_service_goes_away(
    gateway: GatewayFactory,
) -> None:
    async def openapi(_request: web.Request) -> web.Response:
        item = {"get": {"responses": {"200": {"description": "ok"}}}}
        return web.json_response({"openapi": "3.1.0", "paths": {"/api/v1/tasks": item}})

    app = web.Application()
    app.router.add_get("/openapi.json", openapi)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    async with gateway(tasks_url=url, openapi_refresh_seconds=0) as gw:
        before = (await gw.client.get("/openapi.json")).json()
        await runner.cleanup()
        after = await gw.client.get("/openapi.json")
    assert "/api/v1/tasks" in before["paths"]
    assert after.status_code == 200
    assert "/api/v1/tasks" in after.json()["paths"]
