"""Admin operations: listing users, role and disabled changes, bootstrap admin, key rotation."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import timedelta

import httpx
import jwt
import pytest
from auth_service.adapters.signing_keys import KeyStore
from auth_service.api.app import create_app
from auth_service.config import Settings
from auth_service.service_layer.clock import utcnow
from fastapi import FastAPI
from taskmesh_common.mongo import create_mongo_client
from taskmesh_common.testing import random_email
from taskmesh_common.testing.servers import BackingServers

from .conftest import PASSWORD, admin_session, bearer, login, make_settings, register, running

pytestmark = pytest.mark.integration

USERS = "/api/v1/auth/users"
ROTATE = "/api/v1/auth/keys/rotate"


def kid_of(token: str) -> str:
    head = token.split(".")[0]
    kid: str = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"]
    return kid


async def test_admin_endpoints_are_403_for_users(client: httpx.AsyncClient) -> None:
    user = await register(client)
    tokens = await login(client, user["email"])
    for method, path, body in (
        ("GET", USERS, None),
        ("PATCH", f"{USERS}/{user['id']}", {"role": "admin"}),
        ("POST", ROTATE, None),
    ):
        response = await client.request(method, path, json=body, headers=bearer(tokens))
        assert response.status_code == 403, (method, path)
        assert response.headers["content-type"] == "application/problem+json"
    assert (await client.get(USERS)).status_code == 401


async def test_admin_lists_users_page_by_page(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    admin = await admin_session(settings, client)
    created = {(await register(client))["id"] for _ in range(5)}
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await client.get(USERS, params=params, headers=bearer(admin))).json()
        assert len(page["items"]) <= 2
        seen += [u["id"] for u in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert created <= set(seen)
    assert len(seen) == len(set(seen)) == 6
    bad = await client.get(USERS, params={"cursor": "garbage!"}, headers=bearer(admin))
    assert bad.status_code == 422
    too_many = await client.get(USERS, params={"limit": "1000"}, headers=bearer(admin))
    assert too_many.status_code == 422


async def test_disabled_user_cannot_refresh_or_log_in_and_me_shows_it(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    admin = await admin_session(settings, client)
    user = await register(client)
    tokens = await login(client, user["email"])
    changed = await client.patch(
        f"{USERS}/{user['id']}", json={"disabled": True}, headers=bearer(admin)
    )
    assert changed.status_code == 200 and changed.json()["disabled"] is True

    refresh = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refresh.status_code == 401
    relogin = await client.post(
        "/api/v1/auth/login", json={"email": user["email"], "password": PASSWORD}
    )
    assert relogin.status_code == 401
    # The access token runs out within 15 minutes; meanwhile /me tells the truth.
    me = await client.get("/api/v1/auth/me", headers=bearer(tokens))
    assert me.status_code == 200 and me.json()["disabled"] is True

    await client.patch(f"{USERS}/{user['id']}", json={"disabled": False}, headers=bearer(admin))
    assert (await login(client, user["email"]))["access_token"]


async def test_role_change_takes_effect_at_the_next_token(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    admin = await admin_session(settings, client)
    user = await register(client)
    tokens = await login(client, user["email"])
    changed = await client.patch(
        f"{USERS}/{user['id']}", json={"role": "admin"}, headers=bearer(admin)
    )
    assert changed.json()["role"] == "admin"
    pair = (
        await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    ).json()
    assert (await client.get(USERS, headers=bearer(pair))).status_code == 200


async def test_demoted_admin_loses_admin_powers_at_once(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    admin = await admin_session(settings, client)
    other = await admin_session(settings, client)
    other_id = (await client.get("/api/v1/auth/me", headers=bearer(other))).json()["id"]
    await client.patch(f"{USERS}/{other_id}", json={"role": "user"}, headers=bearer(admin))
    # Their access token still says admin, but the role change revoked it.
    refused = await client.get(USERS, headers=bearer(other))
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"], refused.text
    # A refresh brings a token with the new role, which auth refuses admin work.
    fresh = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": other["refresh_token"]}
    )
    assert fresh.status_code == 200, fresh.text
    assert (
        jwt.decode(fresh.json()["access_token"], options={"verify_signature": False})["role"]
        == "user"
    )
    assert (await client.get(USERS, headers=bearer(fresh.json()))).status_code == 403


@pytest.mark.parametrize(
    "body", [{}, {"role": "root"}, {"disabled": "yes"}, {"role": "user", "email": "x@y.z"}]
)
async def test_bad_user_changes_are_422(
    settings: Settings, client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    admin = await admin_session(settings, client)
    user = await register(client)
    response = await client.patch(f"{USERS}/{user['id']}", json=body, headers=bearer(admin))
    assert response.status_code == 422


async def test_admin_cannot_disable_themselves_and_unknown_user_is_404(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    admin = await admin_session(settings, client)
    me = (await client.get("/api/v1/auth/me", headers=bearer(admin))).json()
    own = await client.patch(f"{USERS}/{me['id']}", json={"disabled": True}, headers=bearer(admin))
    assert own.status_code == 409
    missing = await client.patch(f"{USERS}/nobody", json={"disabled": True}, headers=bearer(admin))
    assert missing.status_code == 404


async def test_bootstrap_admin_is_created_once_and_can_administer(
    backing_servers: BackingServers, events_exchange: str
) -> None:
    email = random_email("admin")
    settings = make_settings(
        backing_servers,
        events_exchange,
        bootstrap_admin_email=email.upper(),
        bootstrap_admin_password="bootstrap password",
    )
    for _ in range(2):  # a restart must not create a second admin or fail
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            await _wait_for_user(settings, email)
    async with running(settings) as (_app, client):
        tokens = await login(client, email, "bootstrap password")
        assert (await client.get(USERS, headers=bearer(tokens))).status_code == 200
        await _wait_for_user(settings, email)  # still exactly one


async def _wait_for_user(settings: Settings, email: str) -> None:
    mongo = create_mongo_client(settings.mongo_url)
    try:
        users = mongo[settings.mongo_db]["users"]
        for _ in range(100):
            if await users.count_documents({"email": email, "role": "admin"}) == 1:
                assert await users.count_documents({}) == 1
                return
            await asyncio.sleep(0.05)
        raise AssertionError("bootstrap admin not created")
    finally:
        await mongo.close()


async def test_key_rotation_keeps_old_tokens_valid_and_new_tokens_use_the_new_kid(
    settings: Settings, app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await admin_session(settings, client)
    user = await register(client)
    before = await login(client, user["email"])
    old_kid = kid_of(before["access_token"])

    rotated = await client.post(ROTATE, headers=bearer(admin))
    assert rotated.status_code == 200
    new_kid = rotated.json()["kid"]
    assert new_kid != old_kid

    jwks = await client.get("/.well-known/jwks.json")
    assert jwks.headers["cache-control"] == "public, max-age=300"
    kids = {k["kid"] for k in jwks.json()["keys"]}
    assert {old_kid, new_kid} <= kids
    assert all("d" not in k for k in jwks.json()["keys"]), "private key material published"
    assert (await client.get("/api/v1/auth/.well-known/jwks.json")).json() == jwks.json()

    after = await login(client, user["email"])
    assert kid_of(after["access_token"]) == new_kid
    for tokens in (before, after):
        assert (await client.get("/api/v1/auth/me", headers=bearer(tokens))).status_code == 200


async def test_retired_key_leaves_the_jwks_after_its_tokens_expire(settings: Settings) -> None:
    mongo = create_mongo_client(settings.mongo_url)
    try:
        collection = mongo[settings.mongo_db]["signing_keys"]
        await collection.create_index("generation", unique=True)
        keys = KeyStore(collection, reload_seconds=30, retire_grace=timedelta(minutes=15))
        now = utcnow()
        first = await keys.ensure_key(now)
        second = await keys.rotate(now)
        published = {k["kid"] for k in (await keys.jwks(now, fresh=True))["keys"]}
        assert published == {first.kid, second.kid}
        later = now + timedelta(minutes=16)
        assert {k["kid"] for k in (await keys.jwks(later, fresh=True))["keys"]} == {second.kid}
        # What the TTL index on `retire_after` deletes by: the old key's date, none for the new.
        retire = {doc["_id"]: doc["retire_after"] async for doc in collection.find()}
        assert retire[second.kid] is None
        assert now + timedelta(minutes=15) <= retire[first.kid] <= later
    finally:
        await mongo.drop_database(settings.mongo_db)
        await mongo.close()


async def test_replicas_starting_together_end_with_one_signing_key(settings: Settings) -> None:
    mongo = create_mongo_client(settings.mongo_url)
    try:
        collection = mongo[settings.mongo_db]["signing_keys"]
        await collection.create_index("generation", unique=True)
        replicas = [
            KeyStore(collection, reload_seconds=30, retire_grace=timedelta(minutes=15))
            for _ in range(6)
        ]
        now = utcnow()
        keys = await asyncio.gather(*(r.ensure_key(now) for r in replicas))
        assert len({k.kid for k in keys}) == 1
        assert await collection.count_documents({}) == 1
    finally:
        await mongo.drop_database(settings.mongo_db)
        await mongo.close()


async def test_rotate_keys_command_makes_a_new_key_sign_on_every_replica(
    backing_servers: BackingServers, events_exchange: str
) -> None:
    from auth_service.__main__ import rotate_keys

    # A replica picks up a key rotated elsewhere within signing_key_reload_seconds.
    settings = make_settings(backing_servers, events_exchange, signing_key_reload_seconds=0.2)
    async with running(settings) as (_app, client):
        user = await register(client)
        old_kid = kid_of((await login(client, user["email"]))["access_token"])
        new_kid = await rotate_keys(settings)
        assert new_kid != old_kid
        await asyncio.sleep(0.3)
        assert kid_of((await login(client, user["email"]))["access_token"]) == new_kid
        await asyncio.sleep(5)  # the public JWKS endpoint caches for a few seconds
        kids = {k["kid"] for k in (await client.get("/.well-known/jwks.json")).json()["keys"]}
        assert {old_kid, new_kid} <= kids


async def test_jwks_is_never_empty_even_when_asked_first(
    backing_servers: BackingServers, events_exchange: str
) -> None:
    settings = make_settings(backing_servers, events_exchange)
    async with running(settings) as (_app, client):
        first = (await client.get("/.well-known/jwks.json")).json()
        assert len(first["keys"]) == 1
        assert first["keys"][0]["kty"] == "OKP" and first["keys"][0]["alg"] == "EdDSA"
