"""The bootstrap admin: made only while no admin exists, never by changing an account."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from auth_service.api.app import create_app
from auth_service.bootstrap import prepare_indexes_forever, start_up_forever
from auth_service.config import Settings
from fastapi import FastAPI
from taskmesh_common.mongo import create_mongo_client
from taskmesh_common.testing import random_email
from taskmesh_common.testing.servers import BackingServers

from .conftest import PASSWORD, admin_session, bearer, make_settings, register

pytestmark = pytest.mark.integration

BOOTSTRAP_PASSWORD = "bootstrap password"
USERS = "/api/v1/auth/users"


@pytest.fixture
def bootstrap_settings(backing_servers: BackingServers, events_exchange: str) -> Settings:
    return make_settings(
        backing_servers,
        events_exchange,
        bootstrap_admin_email=random_email("boot"),
        bootstrap_admin_password=BOOTSTRAP_PASSWORD,
    )


@pytest.fixture
async def drop_db(bootstrap_settings: Settings) -> AsyncIterator[None]:
    yield
    mongo = create_mongo_client(bootstrap_settings.mongo_url)
    with contextlib.suppress(Exception):
        await mongo.drop_database(bootstrap_settings.mongo_db)
    await mongo.close()


@contextlib.asynccontextmanager
async def replica(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """One start of an auth replica whose start-up work has run to its end."""
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://auth.test") as c,
    ):
        await start_up(app, settings)
        yield app, c


async def start_up(app: FastAPI, settings: Settings) -> None:
    """The replica's start-up routine, awaited (the lifespan runs it in the background)."""
    ready = asyncio.Event()
    await prepare_indexes_forever(app.state.db, ready)
    await asyncio.wait_for(
        start_up_forever(settings, ready, app.state.keys, app.state.accounts), 30
    )


async def users_where(settings: Settings, query: dict[str, Any]) -> list[dict[str, Any]]:
    mongo = create_mongo_client(settings.mongo_url)
    try:
        return [doc async for doc in mongo[settings.mongo_db]["users"].find(query)]
    finally:
        await mongo.close()


async def login_status(client: httpx.AsyncClient, email: str, password: str) -> int:
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    return response.status_code


@pytest.mark.usefixtures("drop_db")
async def test_a_demoted_and_disabled_bootstrap_admin_stays_so_after_a_restart(
    bootstrap_settings: Settings,
) -> None:
    email = bootstrap_settings.bootstrap_admin_email
    assert email is not None
    async with replica(bootstrap_settings) as (_app, client):
        [boot] = await users_where(bootstrap_settings, {"email": email, "role": "admin"})
        other = await admin_session(bootstrap_settings, client)
        response = await client.patch(
            f"{USERS}/{boot['_id']}", json={"role": "user", "disabled": True}, headers=bearer(other)
        )
        assert response.status_code == 200, response.text
    async with replica(bootstrap_settings) as (_app, client):
        [after] = await users_where(bootstrap_settings, {"_id": boot["_id"]})
        assert (after["role"], after["disabled"]) == ("user", True)
        assert await login_status(client, email, BOOTSTRAP_PASSWORD) != 200
        assert len(await users_where(bootstrap_settings, {"role": "admin"})) == 1


@pytest.mark.usefixtures("drop_db")
async def test_a_freed_bootstrap_address_registered_by_someone_else_is_not_promoted(
    bootstrap_settings: Settings,
) -> None:
    email = bootstrap_settings.bootstrap_admin_email
    assert email is not None
    async with replica(bootstrap_settings) as (_app, client):
        tokens = (
            await client.post(
                "/api/v1/auth/login", json={"email": email, "password": BOOTSTRAP_PASSWORD}
            )
        ).json()
        deleted = await client.request(
            "DELETE",
            "/api/v1/auth/me",
            json={"password": BOOTSTRAP_PASSWORD},
            headers=bearer(tokens),
        )
        assert deleted.status_code == 204, deleted.text
        newcomer = await register(client, email)  # the address is free again
    # No admin is left at all, yet the newcomer's account is not the bootstrap admin's to take.
    async with replica(bootstrap_settings) as (_app, client):
        [after] = await users_where(bootstrap_settings, {"_id": newcomer["id"]})
        assert (after["role"], after["disabled"]) == ("user", False)
        assert await login_status(client, email, BOOTSTRAP_PASSWORD) == 401
        assert await login_status(client, email, PASSWORD) == 200
        assert (
            await users_where(bootstrap_settings, {"role": "admin", "deleted": {"$ne": True}}) == []
        )


@pytest.mark.usefixtures("drop_db")
async def test_nothing_is_created_while_an_admin_exists(bootstrap_settings: Settings) -> None:
    plain = bootstrap_settings.model_copy(
        update={"bootstrap_admin_email": None, "bootstrap_admin_password": None}
    )
    async with replica(plain) as (_app, client):
        await admin_session(plain, client)
    async with replica(bootstrap_settings) as (_app, client):
        assert (
            await users_where(
                bootstrap_settings, {"email": bootstrap_settings.bootstrap_admin_email}
            )
            == []
        )
        assert len(await users_where(bootstrap_settings, {"role": "admin"})) == 1


@pytest.mark.usefixtures("drop_db")
async def test_replicas_bootstrapping_at_once_make_exactly_one_admin(
    bootstrap_settings: Settings,
) -> None:
    # Replicas of a rollout may even disagree on the address; still one admin between them.
    emails = [bootstrap_settings.bootstrap_admin_email] * 3 + [
        random_email("boot") for _ in range(3)
    ]
    async with replica(bootstrap_settings.model_copy(update={"bootstrap_admin_email": None})) as (
        app,
        _client,
    ):
        ready = asyncio.Event()
        ready.set()  # the indexes are there: this replica's start-up made them
        keys, accounts = app.state.keys, app.state.accounts
        await asyncio.gather(
            *(
                start_up_forever(
                    bootstrap_settings.model_copy(update={"bootstrap_admin_email": e}),
                    ready,
                    keys,
                    accounts,
                )
                for e in emails
            )
        )
        admins = await users_where(bootstrap_settings, {"role": "admin"})
        assert len(admins) == 1
        assert admins[0]["email"] in emails
