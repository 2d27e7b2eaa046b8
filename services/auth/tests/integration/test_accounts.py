"""Accounts through the API: registration, /me, deletion, input validation, outages."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from auth_service.config import Settings
from taskmesh_common.mongo import create_mongo_client
from taskmesh_common.testing import random_email
from taskmesh_common.testing.servers import BackingServers

from .conftest import PASSWORD, bearer, login, make_settings, register, running

pytestmark = pytest.mark.integration

REGISTER = "/api/v1/auth/register"


async def test_register_returns_the_user_without_any_password(client: httpx.AsyncClient) -> None:
    email = random_email()
    response = await client.post(
        REGISTER, json={"email": email, "password": PASSWORD, "display_name": "Ada"}
    )
    assert response.status_code == 201
    user = response.json()
    assert set(user) == {"id", "email", "display_name", "role", "disabled", "created_at"}
    assert (user["email"], user["display_name"], user["role"]) == (email, "Ada", "user")
    assert PASSWORD not in response.text and "argon2" not in response.text


async def test_email_is_stored_lower_cased_and_other_letter_case_is_409(
    client: httpx.AsyncClient,
) -> None:
    email = random_email()
    user = await register(client, email.upper())
    assert user["email"] == email
    again = await client.post(REGISTER, json={"email": email.title(), "password": PASSWORD})
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    # And the account logs in whatever the case typed.
    assert (await login(client, email.upper()))["token_type"] == "Bearer"


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-email", "password": PASSWORD},
        {"email": "a@b", "password": PASSWORD},
        {"email": "user@example.com", "password": "short-9ch"},
        {"email": "user@example.com", "password": "x" * 1025},
        {"email": "user@example.com", "password": PASSWORD, "role": "admin"},
        {"email": {"$gt": ""}, "password": PASSWORD},
        {"email": "user@example.com", "password": {"$ne": None}},
        {"email": "user@example.com", "password": 12345678901},
        {"email": "user@example.com", "password": PASSWORD, "display_name": 7},
        {"email": "user@example.com"},
        [],
    ],
)
async def test_bad_registration_input_is_422_problem(client: httpx.AsyncClient, body: Any) -> None:
    response = await client.post(REGISTER, json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert PASSWORD not in response.text


async def test_password_of_exactly_10_and_1024_characters_is_accepted(
    client: httpx.AsyncClient,
) -> None:
    for password in ("p" * 10, "p" * 1024):
        user = await register(client, password=password)
        assert (await login(client, user["email"], password))["access_token"]


async def test_me_shows_the_caller(client: httpx.AsyncClient) -> None:
    user = await register(client, display_name="Grace")
    tokens = await login(client, user["email"])
    me = await client.get("/api/v1/auth/me", headers=bearer(tokens))
    assert me.status_code == 200
    assert me.json() == user


async def test_me_without_a_token_is_401_with_a_bearer_challenge(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/v1/auth/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"] == "application/problem+json"


async def test_deleted_account_cannot_log_in_refresh_or_see_itself(
    client: httpx.AsyncClient,
) -> None:
    user = await register(client)
    tokens = await login(client, user["email"])
    deleted = await client.request(
        "DELETE", "/api/v1/auth/me", json={"password": PASSWORD}, headers=bearer(tokens)
    )
    assert deleted.status_code == 204

    relogin = await client.post(
        "/api/v1/auth/login", json={"email": user["email"], "password": PASSWORD}
    )
    assert relogin.status_code == 401
    refresh = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refresh.status_code == 401
    me = await client.get("/api/v1/auth/me", headers=bearer(tokens))
    assert me.status_code == 401
    again = await client.request(
        "DELETE", "/api/v1/auth/me", json={"password": PASSWORD}, headers=bearer(tokens)
    )
    assert again.status_code == 401


async def test_deleted_accounts_email_can_register_a_new_account(
    client: httpx.AsyncClient,
) -> None:
    user = await register(client)
    tokens = await login(client, user["email"])
    await client.request(
        "DELETE", "/api/v1/auth/me", json={"password": PASSWORD}, headers=bearer(tokens)
    )
    fresh = await register(client, user["email"])
    assert fresh["id"] != user["id"]


async def test_password_is_rehashed_at_login_when_parameters_change(
    backing_servers: BackingServers, events_exchange: str
) -> None:
    settings = make_settings(backing_servers, events_exchange)
    async with running(settings) as (_app, client):
        user = await register(client)
        old_hash = await _password_hash(settings, user["id"])
        stronger = make_settings(
            backing_servers,
            events_exchange,
            mongo_db=settings.mongo_db,
            argon2_time_cost=2,
            argon2_memory_kib=2048,
        )
        async with running(stronger) as (_app2, client2):
            await login(client2, user["email"])
            new_hash = await _password_hash(settings, user["id"])
            assert new_hash != old_hash
            assert "m=2048,t=2" in new_hash
            assert (await login(client2, user["email"]))["access_token"]


async def _password_hash(settings: Settings, user_id: str) -> str:
    mongo = create_mongo_client(settings.mongo_url)
    try:
        doc = await mongo[settings.mongo_db]["users"].find_one({"_id": user_id})
    finally:
        await mongo.close()
    assert doc is not None
    password_hash: str = doc["password_hash"]
    assert password_hash.startswith("$argon2id$")
    return password_hash


async def test_database_outage_is_503_problem_not_500(
    backing_servers: BackingServers, events_exchange: str
) -> None:
    # A port nothing listens on: every MongoDB call fails fast.
    settings = make_settings(
        backing_servers,
        events_exchange,
        mongo_url="mongodb://127.0.0.1:1/?directConnection=true",
        mongo_timeout_seconds=0.3,
    )
    async with running(settings) as (_app, client):
        response = await client.post(REGISTER, json={"email": random_email(), "password": PASSWORD})
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert "retry-after" in response.headers
        login_response = await client.post(
            "/api/v1/auth/login", json={"email": random_email(), "password": PASSWORD}
        )
        assert login_response.status_code == 503
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert "mongo" in ready.json()["failed"]


async def test_readiness_reports_every_dependency(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert {"mongo", "rabbitmq", "redis"} <= set(response.json()["checks"])
