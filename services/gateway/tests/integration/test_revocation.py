"""Revoked access tokens stop at the gateway, checked in the rate limit's own Redis call;
HSTS and CORS as production configures them."""

from __future__ import annotations

import time

import pytest
from redis.asyncio import Redis
from taskmesh_common.redis import create_redis
from taskmesh_common.security import Revoker
from taskmesh_common.testing.servers import BackingServers
from taskmesh_common.testing.tokens import TokenFactory

from .conftest import FakeService, GatewayFactory

pytestmark = pytest.mark.integration

TASKS = "/api/v1/tasks"


def now_ms() -> int:
    return round(time.time() * 1000)


async def _command_calls(url: str) -> dict[str, int]:
    admin = Redis.from_url(url)
    try:
        stats = await admin.info("commandstats")
    finally:
        await admin.aclose()
    return {name: int(value["calls"]) for name, value in stats.items()}


async def test_a_revoked_token_is_401_at_the_gateway_and_never_reaches_the_service(
    gateway: GatewayFactory,
    tokens: TokenFactory,
    fakes: dict[str, FakeService],
    backing_servers: BackingServers,
) -> None:
    old = tokens.auth_header("u-rev", iat=(now_ms() - 5) / 1000, sid="s1")
    async with gateway() as gw:
        assert (await gw.client.get(f"{TASKS}/rev-a", headers=old)).status_code == 200
        redis = create_redis(backing_servers.redis_url)
        try:
            revoked_at = now_ms()
            await Revoker(
                redis, prefix=gw.app.state.settings.redis_prefix, ttl_seconds=60
            ).revoke_user("u-rev", revoked_at)
        finally:
            await redis.aclose()
        before = fakes["tasks"].calls[f"{TASKS}/rev-b"]
        refused = await gw.client.get(f"{TASKS}/rev-b", headers=old)
        assert refused.status_code == 401, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert 'error="invalid_token"' in refused.headers["www-authenticate"]
        assert "revoked" in refused.json()["detail"]
        assert fakes["tasks"].calls[f"{TASKS}/rev-b"] == before
        # A token issued after the revocation (a refresh, a new login) passes.
        fresh = tokens.auth_header("u-rev", iat=revoked_at / 1000, sid="s2")
        assert (await gw.client.get(f"{TASKS}/rev-b", headers=fresh)).status_code == 200


async def test_a_session_revocation_stops_that_session_only(
    gateway: GatewayFactory, tokens: TokenFactory, backing_servers: BackingServers
) -> None:
    issued = (now_ms() - 5) / 1000
    phone = tokens.auth_header("u-sess", iat=issued, sid="phone")
    laptop = tokens.auth_header("u-sess", iat=issued, sid="laptop")
    async with gateway() as gw:
        redis = create_redis(backing_servers.redis_url)
        try:
            prefix = gw.app.state.settings.redis_prefix
            await Revoker(redis, prefix=prefix, ttl_seconds=60).revoke_session("phone", now_ms())
        finally:
            await redis.aclose()
        assert (await gw.client.get(TASKS, headers=phone)).status_code == 401
        assert (await gw.client.get(TASKS, headers=laptop)).status_code == 200


async def test_the_revocation_check_costs_no_redis_call_of_its_own(
    gateway: GatewayFactory, tokens: TokenFactory, backing_servers: BackingServers
) -> None:
    headers = tokens.auth_header("u-cost", sid="s")
    async with gateway() as gw:
        assert (await gw.client.get(TASKS, headers=headers)).status_code == 200
        before = await _command_calls(backing_servers.redis_url)
        assert (await gw.client.get(TASKS, headers=headers)).status_code == 200
        after = await _command_calls(backing_servers.redis_url)
    changed = {name: after[name] - before.get(name, 0) for name in after}
    changed = {name: count for name, count in changed.items() if count}
    # One call from the gateway: the script. Inside it (Redis counts those too) TIME, the
    # rate key's GET and SET, and one GET per revocation key (user, session). The rest is
    # this test's own connection for INFO.
    assert changed.pop("cmdstat_evalsha") == 1, changed
    for own in ("cmdstat_info", "cmdstat_hello"):
        changed.pop(own, None)
    assert changed == {"cmdstat_time": 1, "cmdstat_get": 3, "cmdstat_set": 1}, changed


async def test_production_sends_hsts_and_allows_only_configured_origins(
    gateway: GatewayFactory,
) -> None:
    # Production refuses a Redis URL without a password; this one is never reached (the
    # limiter fails open), which is all the headers need.
    production = {"env": "production", "redis_url": "redis://:pw@127.0.0.1:1/0"}
    preflight = {"Origin": "http://localhost:3000", "Access-Control-Request-Method": "GET"}
    async with gateway(**production) as gw:
        health = await gw.client.get("/healthz")
        refused = await gw.client.options(TASKS, headers=preflight)
    assert health.headers["strict-transport-security"].startswith("max-age=31536000")
    assert "access-control-allow-origin" not in refused.headers

    configured = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"}
    async with gateway(**production, cors_origins="https://app.example.com") as gw:
        allowed = await gw.client.options(TASKS, headers=configured)
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"

    async with gateway() as gw:  # development: no HSTS (plain HTTP on localhost)
        local = await gw.client.get("/healthz")
    assert "strict-transport-security" not in local.headers
