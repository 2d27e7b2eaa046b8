"""The signing key's private part at rest: sealed with TASKMESH_KEY_ENCRYPTION_KEY.

Reading auth's database (a leaked backup, a service holding another's database user) no
longer gives the key that signs everyone's tokens. Losing the key encryption key, or
configuring another one, is a refusal to start that names the setting, never a replica
that signs with a fresh key nobody else knows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import httpx
import jwt
import pytest
from auth_service.adapters.key_wrapping import new_key
from faults_client import PASSWORD
from pymongo import MongoClient
from taskmesh_common.testing import random_email, unique_name
from taskmesh_common.testing.servers import BackingServers
from taskmesh_local import LocalError, start_services

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

PEM = re.compile(r"-----BEGIN")


def _keys(env: Mapping[str, str]) -> list[dict[str, Any]]:
    mongo: MongoClient[dict[str, Any]]
    with MongoClient(env["TASKMESH_MONGO_URL"], serverSelectionTimeoutMS=5000) as mongo:
        db = mongo[f"{env['TASKMESH_MONGO_DB_PREFIX']}auth"]
        return list(db["signing_keys"].find({}))


def _signed_kid(auth_url: str) -> str:
    """Register and log in at auth itself; the kid of the access token it signed."""
    email = random_email("kek")
    with httpx.Client(base_url=auth_url, timeout=20) as client:
        registered = client.post(
            "/api/v1/auth/register", json={"email": email, "password": PASSWORD}
        )
        assert registered.status_code == 201, registered.text
        login = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200, login.text
        jwks = client.get("/.well-known/jwks.json").json()
    kid = str(jwt.get_unverified_header(login.json()["access_token"])["kid"])
    assert kid in {key["kid"] for key in jwks["keys"]}
    return kid


def _start_auth(env: Mapping[str, str]) -> str:
    """Start auth alone, wait until ready, sign one token; the token's kid."""
    with start_services(env, names=("auth",), timeout=60) as running:
        return _signed_kid(running.urls["auth"])


def _refusal(env: Mapping[str, str]) -> str:
    with pytest.raises(LocalError) as refused:
        start_services(env, names=("auth",), timeout=60).stop()
    return str(refused.value)


def test_the_private_key_is_stored_sealed_and_a_lost_key_encryption_key_stops_auth(
    backing_servers: BackingServers,
) -> None:
    name = unique_name("kek")
    env = {
        "TASKMESH_MONGO_URL": backing_servers.mongo_url,
        "TASKMESH_AMQP_URL": backing_servers.amqp_url,
        "TASKMESH_REDIS_URL": backing_servers.redis_url,
        # Names of our own on the shared servers; cheap hashes (two registrations).
        "TASKMESH_MONGO_DB_PREFIX": f"{name}_",
        "TASKMESH_EVENTS_EXCHANGE": name,
        "TASKMESH_QUEUE_PREFIX": f"{name}.",
        "TASKMESH_REDIS_PREFIX": f"{name}:",
        "TASKMESH_ARGON2_MEMORY_KIB": "8192",
        "TASKMESH_ARGON2_TIME_COST": "1",
        "TASKMESH_LOG_LEVEL": "WARNING",
        "OTEL_SDK_DISABLED": "true",
    }
    # A development database from before encryption: the key is stored as PEM.
    plain_kid = _start_auth(env)
    [stored] = _keys(env)
    assert PEM.search(stored["private_pem"])

    # Started with a key encryption key: the same key, sealed in place, still signs.
    sealed_env = {**env, "TASKMESH_KEY_ENCRYPTION_KEY": new_key()}
    assert _start_auth(sealed_env) == plain_kid
    [stored] = _keys(env)
    assert "private_pem" not in stored and stored["private_alg"] == "A256GCM"
    assert not PEM.search(str(stored)), "the private key is readable in the database"

    # The key encryption key lost, or another one configured: auth refuses to start.
    missing = _refusal(env)
    assert "TASKMESH_KEY_ENCRYPTION_KEY is not set" in missing, missing
    wrong = _refusal({**env, "TASKMESH_KEY_ENCRYPTION_KEY": new_key()})
    assert "cannot be decrypted with TASKMESH_KEY_ENCRYPTION_KEY" in wrong, wrong
    # Nothing was overwritten meanwhile: the right key still opens the same signing key.
    assert _start_auth(sealed_env) == plain_kid
