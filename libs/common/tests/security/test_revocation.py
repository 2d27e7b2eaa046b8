"""Revoked tokens as a service sees them: refused for writes and admin decisions, on real Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from taskmesh_common.errors import install_error_handlers
from taskmesh_common.redis import create_redis
from taskmesh_common.security import AdminPrincipal, LivePrincipal, RevocationCheck, Revoker
from taskmesh_common.testing import unique_name
from taskmesh_common.testing.servers import BackingServers
from taskmesh_common.testing.tokens import TokenFactory

# A port nothing listens on: Redis "away".
UNREACHABLE = "redis://127.0.0.1:1/0"


def now_ms() -> int:
    return round(time.time() * 1000)


@pytest.fixture
async def redis(backing_servers: BackingServers) -> AsyncIterator[Redis]:
    client = create_redis(backing_servers.redis_url)
    yield client
    await client.aclose()


def app_with(tokens: TokenFactory, check: RevocationCheck) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.state.verifier = tokens.verifier()
    app.state.revocations = check

    @app.post("/write")
    async def write(principal: LivePrincipal) -> dict[str, Any]:
        return {"user_id": principal.user_id}

    @app.get("/admin")
    async def admin(principal: AdminPrincipal) -> dict[str, Any]:
        return {"user_id": principal.user_id}

    return app


def client_of(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test")


async def test_a_user_revocation_refuses_older_tokens_and_accepts_newer_ones(
    redis: Redis,
) -> None:
    tokens, prefix = TokenFactory(), unique_name("rev") + ":"
    revoker = Revoker(redis, prefix=prefix, ttl_seconds=60)
    old = tokens.auth_header("u1", iat=(now_ms() - 5) / 1000)
    async with client_of(app_with(tokens, RevocationCheck(redis, prefix=prefix))) as client:
        assert (await client.post("/write", headers=old)).status_code == 200
        revoked_at = now_ms()
        await revoker.revoke_user("u1", revoked_at)
        refused = await client.post("/write", headers=old)
        assert refused.status_code == 401, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert "revoked" in refused.json()["detail"]
        # Issued in the millisecond of the revocation or after: fine.
        newer = tokens.auth_header("u1", iat=revoked_at / 1000)
        assert (await client.post("/write", headers=newer)).status_code == 200
        # Another user's tokens are untouched.
        assert (await client.post("/write", headers=tokens.auth_header("u2"))).status_code == 200


class CountingMget:
    """The real client, with its MGETs counted."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.mgets = 0

    async def mget(self, keys: list[str]) -> list[Any]:
        self.mgets += 1
        return await self.redis.mget(keys)


async def test_checks_in_flight_together_share_one_read_and_each_gets_its_own_verdict(
    redis: Redis,
) -> None:
    tokens, prefix = TokenFactory(), unique_name("rev") + ":"
    issued = (now_ms() - 5) / 1000
    await Revoker(redis, prefix=prefix, ttl_seconds=60).revoke_user("gone", now_ms())
    await Revoker(redis, prefix=prefix, ttl_seconds=60).revoke_session("s-lost", now_ms())
    callers = [
        *(("gone", None, 401) for _ in range(8)),
        *(("kept", "s-lost", 401) for _ in range(4)),
        *(("kept", "s-kept", 200) for _ in range(8)),
    ]
    counted = CountingMget(redis)
    check = RevocationCheck(counted, prefix=prefix)  # type: ignore[arg-type]
    async with client_of(app_with(tokens, check)) as client:
        answers = await asyncio.gather(
            *(
                client.post("/write", headers=tokens.auth_header(user, iat=issued, sid=sid))
                for user, sid, _ in callers
            )
        )
    assert [a.status_code for a in answers] == [status for _, _, status in callers]
    assert counted.mgets < len(callers) / 4, counted.mgets


async def test_with_redis_hung_the_checks_in_flight_wait_out_one_read_and_go_on(
    silent_redis: str,
) -> None:
    tokens = TokenFactory()
    hung = CountingMget(create_redis(silent_redis, timeout_seconds=5))
    try:
        check = RevocationCheck(hung, prefix="x:", timeout_seconds=0.3)  # type: ignore[arg-type]
        async with client_of(app_with(tokens, check)) as client:
            answers = await asyncio.gather(
                *(client.post("/write", headers=tokens.auth_header(f"u{n}")) for n in range(300))
            )
        # Fail open, every one; and all of them waited on the same read, not on one read
        # per hundred checks queued one behind the other.
        assert [a.status_code for a in answers] == [200] * 300
        assert hung.mgets == 1
    finally:
        await hung.redis.aclose()


async def test_an_earlier_revocation_arriving_late_does_not_lower_the_mark(redis: Redis) -> None:
    tokens, prefix = TokenFactory(), unique_name("rev") + ":"
    revoker = Revoker(redis, prefix=prefix, ttl_seconds=60)
    later = now_ms()
    await revoker.revoke_user("u1", later)
    await revoker.revoke_user("u1", later - 10_000)
    between = tokens.auth_header("u1", iat=(later - 5_000) / 1000)
    async with client_of(app_with(tokens, RevocationCheck(redis, prefix=prefix))) as client:
        assert (await client.post("/write", headers=between)).status_code == 401


async def test_a_session_revocation_refuses_only_that_sessions_tokens(redis: Redis) -> None:
    tokens, prefix = TokenFactory(), unique_name("rev") + ":"
    revoker = Revoker(redis, prefix=prefix, ttl_seconds=60)
    issued = (now_ms() - 5) / 1000
    mine = tokens.auth_header("u1", iat=issued, sid="s-phone")
    other = tokens.auth_header("u1", iat=issued, sid="s-laptop")
    await revoker.revoke_session("s-phone", now_ms())
    async with client_of(app_with(tokens, RevocationCheck(redis, prefix=prefix))) as client:
        assert (await client.post("/write", headers=mine)).status_code == 401
        assert (await client.post("/write", headers=other)).status_code == 200


async def test_a_demoted_admins_token_is_refused_admin_work(redis: Redis) -> None:
    tokens, prefix = TokenFactory(), unique_name("rev") + ":"
    admin = tokens.auth_header("a1", role="admin", iat=(now_ms() - 5) / 1000)
    async with client_of(app_with(tokens, RevocationCheck(redis, prefix=prefix))) as client:
        assert (await client.get("/admin", headers=admin)).status_code == 200
        await Revoker(redis, prefix=prefix, ttl_seconds=60).revoke_user("a1", now_ms())
        assert (await client.get("/admin", headers=admin)).status_code == 401


async def test_a_revocation_lasts_its_time_to_live_and_no_longer(redis: Redis) -> None:
    prefix = unique_name("rev") + ":"
    await Revoker(redis, prefix=prefix, ttl_seconds=90).revoke_user("u1", now_ms())
    ttl = await redis.pttl(f"{prefix}revoked:user:u1")
    assert 80_000 < ttl <= 90_000


async def test_with_redis_away_writes_fail_open_and_admin_decisions_are_503() -> None:
    tokens = TokenFactory()
    away = create_redis(UNREACHABLE, timeout_seconds=0.2)
    try:
        check = RevocationCheck(away, prefix="x:", timeout_seconds=0.5)
        async with client_of(app_with(tokens, check)) as client:
            assert (
                await client.post("/write", headers=tokens.auth_header("u1"))
            ).status_code == 200
            admin = await client.get("/admin", headers=tokens.auth_header("a1", role="admin"))
            assert admin.status_code == 503, admin.text
            assert admin.headers["content-type"] == "application/problem+json"
            assert "Retry-After" in admin.headers
        closed = RevocationCheck(away, prefix="x:", timeout_seconds=0.5, fail_open=False)
        async with client_of(app_with(tokens, closed)) as client:
            assert (
                await client.post("/write", headers=tokens.auth_header("u1"))
            ).status_code == 503
    finally:
        await away.aclose()
