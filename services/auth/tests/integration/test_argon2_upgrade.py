"""Passwords hashed with the Argon2 parameters auth used before today's defaults are
upgraded to the defaults at the user's next good login, and keep working after it."""

from __future__ import annotations

import pytest
from auth_service.config import Settings
from taskmesh_common.mongo import create_mongo_client
from taskmesh_common.testing.servers import BackingServers

from .conftest import PASSWORD, login, make_settings, register, running

pytestmark = pytest.mark.integration

# RFC 9106's second recommendation, auth's default until the parameters were measured
# (`python -m bench.argon2_cost`): the hashes every existing account holds.
OLD_ARGON2 = {"argon2_time_cost": 3, "argon2_memory_kib": 65536, "argon2_parallelism": 4}
ARGON2_FIELDS = ("argon2_time_cost", "argon2_memory_kib", "argon2_parallelism")


def _defaults() -> dict[str, int]:
    return {name: Settings.model_fields[name].default for name in ARGON2_FIELDS}


async def _stored_hash(settings: Settings, user_id: str) -> str:
    mongo = create_mongo_client(settings.mongo_url)
    try:
        doc = await mongo[settings.mongo_db]["users"].find_one({"_id": user_id})
    finally:
        await mongo.close()
    assert doc is not None
    password_hash: str = doc["password_hash"]
    return password_hash


async def test_a_hash_of_the_old_parameters_is_upgraded_to_the_defaults_at_login(
    backing_servers: BackingServers, events_exchange: str
) -> None:
    old = make_settings(backing_servers, events_exchange, **OLD_ARGON2)
    async with running(old) as (_app, client):
        user = await register(client)
        old_hash = await _stored_hash(old, user["id"])
        assert "$m=65536,t=3,p=4$" in old_hash
        # Today's defaults, on the same database: what a deploy of the new version runs.
        new = make_settings(backing_servers, events_exchange, mongo_db=old.mongo_db, **_defaults())
        async with running(new) as (_app2, client2):
            # A wrong password is refused and upgrades nothing: only a checked one is re-hashed.
            wrong = await client2.post(
                "/api/v1/auth/login", json={"email": user["email"], "password": "not it at all"}
            )
            assert wrong.status_code == 401
            assert await _stored_hash(new, user["id"]) == old_hash
            assert (await login(client2, user["email"]))["access_token"]
            upgraded = await _stored_hash(new, user["id"])
            d = _defaults()
            expected = (
                f"$m={d['argon2_memory_kib']},t={d['argon2_time_cost']},"
                f"p={d['argon2_parallelism']}$"
            )
            assert upgraded.startswith("$argon2id$") and expected in upgraded
            assert upgraded != old_hash
            # The upgraded hash logs in, the old password still being the password.
            assert (await login(client2, user["email"], PASSWORD))["access_token"]
            assert await _stored_hash(new, user["id"]) == upgraded
