"""Admission control for password hashing: a login storm is refused fast, not queued."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from taskmesh_common.testing import random_email
from taskmesh_common.testing.servers import BackingServers

from .conftest import PASSWORD, admin_session, bearer, login, make_settings, register, running

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
# Slow enough that a burst arrives while the first hashes still run.
SLOW_ARGON2 = {"argon2_time_cost": 2, "argon2_memory_kib": 65536, "argon2_parallelism": 1}


def _counting(fn: Callable[..., Any], calls: list[int]) -> Callable[..., Any]:
    def wrapper(*args: Any) -> Any:
        calls.append(1)
        return fn(*args)

    return wrapper


@contextlib.asynccontextmanager
async def _only_slot_held(app: Any, client: Any, email: str) -> AsyncIterator[None]:
    """A login by `email` whose password verification keeps the only hashing slot until the
    block ends; then that login completes."""
    passwords = app.state.sessions.hashing.passwords
    verify = passwords.verify
    entered, release = threading.Event(), threading.Event()

    def held_verify(*args: Any) -> Any:
        if not entered.is_set():
            entered.set()
            release.wait(10)
        return verify(*args)

    passwords.verify = held_verify
    holding = asyncio.create_task(login(client, email))
    try:
        assert await asyncio.to_thread(entered.wait, 10)
        yield
    finally:
        release.set()
    await holding


async def test_login_storm_is_refused_fast_and_other_routes_keep_working(
    backing_servers: BackingServers, events_exchange: str
) -> None:
    settings = make_settings(
        backing_servers,
        events_exchange,
        argon2_concurrency=1,
        argon2_queue_limit=1,
        **SLOW_ARGON2,
    )
    async with running(settings) as (app, client):
        users = [await register(client) for _ in range(4)]
        tokens = await login(client, users[0]["email"])
        admin = await admin_session(settings, client)
        passwords = app.state.sessions.hashing.passwords
        hashes: list[int] = []
        passwords.verify = _counting(passwords.verify, hashes)
        passwords.hash = _counting(passwords.hash, hashes)

        logins = [
            client.post(LOGIN, json={"email": user["email"], "password": password})
            for user in users
            for password in (PASSWORD, PASSWORD, "wrong password")
        ]
        registers = [
            client.post(
                "/api/v1/auth/register", json={"email": random_email(), "password": PASSWORD}
            )
            for _ in range(2)
        ]
        others = [
            client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]}),
            client.get("/api/v1/auth/me", headers=bearer(tokens)),
            client.get("/.well-known/jwks.json"),
            client.get("/api/v1/auth/users", headers=bearer(admin)),
        ]
        answers = await asyncio.gather(*logins, *registers, *others)
        burst, (refreshed, me, jwks, listed) = answers[:-4], answers[-4:]

        statuses = [response.status_code for response in burst]
        assert set(statuses) <= {200, 201, 401, 503}, statuses
        refused = [response for response in burst if response.status_code == 503]
        served = [response for response in burst if response.status_code != 503]
        assert refused, statuses
        assert served, statuses
        for response in refused:
            assert response.headers["content-type"].startswith("application/problem+json")
            assert int(response.headers["Retry-After"]) >= 1
            assert response.json()["status"] == 503
        # Only the served requests spent an Argon2 verification: the refused never waited for one.
        assert len(hashes) == len(served)

        assert refreshed.status_code == 200, refreshed.text
        assert me.status_code == 200, me.text
        assert jwks.status_code == 200, jwks.text
        assert listed.status_code == 200, listed.text
        # Once the storm has passed, a refused user gets in.
        assert (await login(client, users[-1]["email"]))["access_token"]


async def test_refused_logins_do_not_count_towards_the_lockout(
    backing_servers: BackingServers, events_exchange: str
) -> None:
    settings = make_settings(
        backing_servers,
        events_exchange,
        argon2_concurrency=1,
        argon2_queue_limit=0,
        login_max_failures=2,
    )
    async with running(settings) as (app, client):
        holder, user = await register(client), await register(client)
        async with _only_slot_held(app, client, holder["email"]):
            for _ in range(3):
                refused = await asyncio.wait_for(
                    client.post(LOGIN, json={"email": user["email"], "password": PASSWORD}), 5
                )
                assert refused.status_code == 503, refused.text
                assert int(refused.headers["Retry-After"]) >= 1
        # Three refusals on an account allowed two failures: none of them counted.
        assert (await login(client, user["email"]))["access_token"]


async def test_a_refusal_is_decided_before_any_database_or_limiter_work(
    backing_servers: BackingServers, events_exchange: str
) -> None:
    """What makes the refusal fast: it answers before the login limiter (Redis) and the user
    lookup (MongoDB), which a storm would otherwise queue behind."""
    settings = make_settings(
        backing_servers, events_exchange, argon2_concurrency=1, argon2_queue_limit=0
    )
    async with running(settings) as (app, client):
        holder = await register(client)
        sessions, accounts = app.state.sessions, app.state.accounts
        lookups: list[str] = []

        def counted(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                lookups.append(name)
                return await fn(*args, **kwargs)

            return wrapper

        async with _only_slot_held(app, client, holder["email"]):
            sessions.limiter.attempt = counted(sessions.limiter.attempt, "limiter")
            sessions.users.by_email = counted(sessions.users.by_email, "login lookup")
            accounts.users.by_email = counted(accounts.users.by_email, "register lookup")
            login_refused = await client.post(
                LOGIN, json={"email": random_email(), "password": PASSWORD}
            )
            register_refused = await client.post(
                "/api/v1/auth/register", json={"email": random_email(), "password": PASSWORD}
            )
        assert login_refused.status_code == 503, login_refused.text
        assert register_refused.status_code == 503, register_refused.text
        assert lookups == []
