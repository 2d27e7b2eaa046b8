"""Password change, logout everywhere, deletion confirmed by password, sessions that end."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import jwt
import pytest
from auth_service.config import Settings
from fastapi import FastAPI
from taskmesh_common.testing.servers import BackingServers

from .conftest import PASSWORD, admin_session, bearer, login, make_settings, register, running

pytestmark = pytest.mark.integration

NEW_PASSWORD = "a brand new passphrase"
PASSWORD_PATH = "/api/v1/auth/password"
REFRESH = "/api/v1/auth/refresh"
ME = "/api/v1/auth/me"


def refresh(client: httpx.AsyncClient, tokens: dict[str, Any]) -> Any:
    return client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})


async def write_with(client: httpx.AsyncClient, tokens: dict[str, Any]) -> httpx.Response:
    """A write every live token may make, and that changes nothing: logout everywhere is
    not it, so use a password change with a wrong current password (403 when the token is
    live, 401 when revoked)."""
    return await client.post(
        PASSWORD_PATH,
        json={"current_password": "not the password", "new_password": NEW_PASSWORD},
        headers=bearer(tokens),
    )


async def test_password_change_needs_the_current_password(client: httpx.AsyncClient) -> None:
    user = await register(client)
    tokens = await login(client, user["email"])
    wrong = await client.post(
        PASSWORD_PATH,
        json={"current_password": "guessing wrong", "new_password": NEW_PASSWORD},
        headers=bearer(tokens),
    )
    assert wrong.status_code == 403, wrong.text
    assert wrong.headers["content-type"] == "application/problem+json"
    assert wrong.json()["type"].endswith("wrong-password")
    short = await client.post(
        PASSWORD_PATH,
        json={"current_password": PASSWORD, "new_password": "short"},
        headers=bearer(tokens),
    )
    assert short.status_code == 422
    anonymous = await client.post(
        PASSWORD_PATH, json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert anonymous.status_code == 401
    # Nothing changed: the old password still logs in.
    await login(client, user["email"])


async def test_password_change_ends_every_other_session_and_gives_a_new_one(
    client: httpx.AsyncClient,
) -> None:
    user = await register(client)
    phone = await login(client, user["email"])
    laptop = await login(client, user["email"])
    changed = await client.post(
        PASSWORD_PATH,
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(laptop),
    )
    assert changed.status_code == 200, changed.text
    assert changed.headers["cache-control"] == "no-store"
    fresh = changed.json()

    for old in (phone, laptop):
        assert (await refresh(client, old)).status_code == 401
        assert (await write_with(client, old)).status_code == 401
    assert (await write_with(client, fresh)).status_code == 403  # live, wrong password
    assert (await refresh(client, fresh)).status_code == 200

    old_login = await client.post(
        "/api/v1/auth/login", json={"email": user["email"], "password": PASSWORD}
    )
    assert old_login.status_code == 401
    await login(client, user["email"], NEW_PASSWORD)


async def test_logout_ends_that_sessions_access_tokens_only(client: httpx.AsyncClient) -> None:
    user = await register(client)
    phone = await login(client, user["email"])
    laptop = await login(client, user["email"])
    out = await client.post(
        "/api/v1/auth/logout",
        json={"refresh_token": phone["refresh_token"]},
        headers=bearer(phone),
    )
    assert out.status_code == 204
    assert (await write_with(client, phone)).status_code == 401
    assert (await write_with(client, laptop)).status_code == 403
    assert (await refresh(client, laptop)).status_code == 200


async def test_logout_everywhere_ends_every_session(client: httpx.AsyncClient) -> None:
    user = await register(client)
    phone = await login(client, user["email"])
    laptop = await login(client, user["email"])
    out = await client.post("/api/v1/auth/logout-all", headers=bearer(phone))
    assert out.status_code == 204
    for old in (phone, laptop):
        assert (await refresh(client, old)).status_code == 401
        assert (await write_with(client, old)).status_code == 401
    again = await login(client, user["email"])
    assert (await write_with(client, again)).status_code == 403


async def test_account_deletion_needs_the_current_password(client: httpx.AsyncClient) -> None:
    user = await register(client)
    tokens = await login(client, user["email"])
    bare = await client.delete(ME, headers=bearer(tokens))
    assert bare.status_code == 422, bare.text
    assert bare.headers["content-type"] == "application/problem+json"
    wrong = await client.request(
        "DELETE", ME, json={"password": "guessing wrong"}, headers=bearer(tokens)
    )
    assert wrong.status_code == 403, wrong.text
    assert (await client.get(ME, headers=bearer(tokens))).status_code == 200
    right = await client.request("DELETE", ME, json={"password": PASSWORD}, headers=bearer(tokens))
    assert right.status_code == 204
    assert (await write_with(client, tokens)).status_code == 401


async def test_disable_revokes_the_users_access_tokens(
    settings: Settings, app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await admin_session(settings, client)
    user = await register(client)
    tokens = await login(client, user["email"])
    assert (await write_with(client, tokens)).status_code == 403
    changed = await client.patch(
        f"/api/v1/auth/users/{user['id']}", json={"disabled": True}, headers=bearer(admin)
    )
    assert changed.status_code == 200
    assert (await write_with(client, tokens)).status_code == 401


async def test_a_session_ends_at_its_absolute_lifetime_however_often_refreshed(
    backing_servers: BackingServers, events_exchange: str
) -> None:
    lifetime = 3
    settings = make_settings(
        backing_servers, events_exchange, refresh_absolute_lifetime_seconds=lifetime
    )
    async with running(settings) as (_app, client):
        user = await register(client)
        logged_in = time.time()
        tokens = await login(client, user["email"])
        refreshes = 0
        while True:
            answer = await refresh(client, tokens)
            if answer.status_code != 200:
                break
            tokens = answer.json()
            refreshes += 1
            assert time.time() - logged_in < lifetime + 30, "the session never ended"
            await asyncio.sleep(0.2)
        ended = time.time() - logged_in
        assert answer.status_code == 401, answer.text
        assert refreshes >= 1 and ended >= lifetime - 0.5, (refreshes, ended)
        # A new login starts a new session.
        assert (await refresh(client, await login(client, user["email"]))).status_code == 200


async def test_access_tokens_carry_a_millisecond_iat_and_their_session(
    client: httpx.AsyncClient,
) -> None:
    user = await register(client)
    first = await login(client, user["email"])
    claims = jwt.decode(first["access_token"], options={"verify_signature": False})
    assert isinstance(claims["sid"], str) and claims["sid"]
    assert abs(claims["iat"] - time.time()) < 60
    second = (await refresh(client, first)).json()
    again = jwt.decode(second["access_token"], options={"verify_signature": False})
    assert again["sid"] == claims["sid"]  # a refresh stays in its session


async def test_browser_session_logout_ends_that_sessions_access_tokens(
    client: httpx.AsyncClient,
) -> None:
    user = await register(client)
    console = {"X-Taskmesh-Client": "console"}
    signed_in = await client.post(
        "/api/v1/auth/session/login",
        json={"email": user["email"], "password": PASSWORD},
        headers=console,
    )
    assert signed_in.status_code == 200, signed_in.text
    browser = {"access_token": signed_in.json()["access_token"]}
    cookie = signed_in.cookies.get("taskmesh_refresh")
    assert cookie
    other = await login(client, user["email"])
    assert (await write_with(client, browser)).status_code == 403  # live, wrong password
    out = await client.post(
        "/api/v1/auth/session/logout",
        headers={**console, "Cookie": f"taskmesh_refresh={cookie}"},
    )
    assert out.status_code == 204, out.text
    assert (await write_with(client, browser)).status_code == 401
    assert (await write_with(client, other)).status_code == 403  # another session goes on
