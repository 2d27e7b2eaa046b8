"""Tokens as a client and an attacker see them: login, refresh rotation, reuse, logout, forgery."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import httpx
import jwt
import pytest
from auth_service.domain.model import hash_refresh_token
from fastapi import FastAPI
from taskmesh_common.testing import random_email
from taskmesh_common.testing.tokens import TokenFactory

from .conftest import PASSWORD, bearer, login, register, registered_session

pytestmark = pytest.mark.integration

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/auth/me"


def header_of(token: str) -> dict[str, str]:
    head = token.split(".")[0]
    decoded: dict[str, str] = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    return decoded


async def test_full_token_life_cycle(client: httpx.AsyncClient) -> None:
    user, tokens = await registered_session(client)
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 900
    assert len(tokens["refresh_token"]) >= 43  # 256 bits, base64url

    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert {"iss", "aud", "sub", "role", "iat", "nbf", "exp", "jti"} <= set(claims)
    assert claims["sub"] == user["id"] and claims["role"] == "user"
    assert claims["exp"] - claims["iat"] <= 900
    assert header_of(tokens["access_token"])["alg"] == "EdDSA"

    refreshed = await client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    assert refreshed.headers["cache-control"] == "no-store"
    pair = refreshed.json()
    assert pair["refresh_token"] != tokens["refresh_token"]
    assert (await client.get(ME, headers=bearer(pair))).json()["id"] == user["id"]

    out = await client.post(
        LOGOUT, json={"refresh_token": pair["refresh_token"]}, headers=bearer(pair)
    )
    assert out.status_code == 204
    after = await client.post(REFRESH, json={"refresh_token": pair["refresh_token"]})
    assert after.status_code == 401


async def test_access_token_verifies_against_the_published_jwks(
    client: httpx.AsyncClient,
) -> None:
    _user, tokens = await registered_session(client)
    jwks = (await client.get("/.well-known/jwks.json")).json()
    kid = header_of(tokens["access_token"])["kid"]
    key = next(jwt.PyJWK(k) for k in jwks["keys"] if k["kid"] == kid)
    claims = jwt.decode(
        tokens["access_token"],
        key,
        algorithms=["EdDSA"],
        audience="taskmesh",
        issuer="taskmesh-auth",
    )
    assert claims["role"] == "user"


async def test_wrong_password_and_unknown_email_are_the_same_401(
    client: httpx.AsyncClient,
) -> None:
    user = await register(client)
    wrong_password = await client.post(LOGIN, json={"email": user["email"], "password": "nope" * 4})
    unknown_email = await client.post(LOGIN, json={"email": random_email(), "password": PASSWORD})
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert wrong_password.json()["detail"] == unknown_email.json()["detail"]
    assert wrong_password.json()["type"] == unknown_email.json()["type"]


async def test_unknown_email_takes_about_as_long_as_a_wrong_password(
    client: httpx.AsyncClient,
) -> None:
    user = await register(client)

    async def timed(email: str) -> float:
        started = time.perf_counter()
        await client.post(LOGIN, json={"email": email, "password": "wrong password!"})
        return time.perf_counter() - started

    # Fewer attempts than the lock-out limit (and than the slow-down after 3). Taken in turn,
    # and the fastest of each kind: what the machine does meanwhile (the registration's event
    # going out, other processes) only ever adds time, so the fastest is each path's own cost.
    pairs = [(await timed(user["email"]), await timed(random_email())) for _ in range(3)]
    known = min(k for k, _ in pairs)
    unknown = min(u for _, u in pairs)
    assert unknown > known * 0.3, (known, unknown)


async def test_spent_refresh_token_revokes_its_family(client: httpx.AsyncClient) -> None:
    _user, tokens = await registered_session(client)
    first = tokens["refresh_token"]
    second = (await client.post(REFRESH, json={"refresh_token": first})).json()["refresh_token"]

    reused = await client.post(REFRESH, json={"refresh_token": first})
    assert reused.status_code == 401
    assert reused.headers["content-type"] == "application/problem+json"
    # The thief's replay killed the legitimate client's newer token too.
    assert (await client.post(REFRESH, json={"refresh_token": second})).status_code == 401


async def test_reuse_revokes_only_that_family(client: httpx.AsyncClient) -> None:
    user, tokens = await registered_session(client)
    other_device = await login(client, user["email"])
    await client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})
    await client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})
    still = await client.post(REFRESH, json={"refresh_token": other_device["refresh_token"]})
    assert still.status_code == 200


async def test_concurrent_uses_of_one_refresh_token_give_one_new_pair(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    _user, tokens = await registered_session(client)
    body = {"refresh_token": tokens["refresh_token"]}
    responses = await asyncio.gather(*(client.post(REFRESH, json=body) for _ in range(8)))
    codes = [r.status_code for r in responses]
    # Exactly one request spent the token and stored a successor; the others are reuse, and
    # reuse revokes the family, so the winner's pair may be refused too (strict, RFC 9700).
    assert codes.count(200) <= 1 and codes.count(401) >= 7, codes
    collection = app.state.db["refresh_tokens"]
    spent = await collection.find_one({"_id": hash_refresh_token(tokens["refresh_token"])})
    assert spent is not None and spent["spent_at"] is not None
    assert await collection.count_documents({"family_id": spent["family_id"]}) == 2
    assert (
        await collection.count_documents({"family_id": spent["family_id"], "revoked": False}) == 0
    )


async def test_unknown_or_malformed_refresh_token_is_refused(client: httpx.AsyncClient) -> None:
    for body in ({"refresh_token": "made-up"}, {"refresh_token": {"$ne": ""}}, {}):
        response = await client.post(REFRESH, json=body)
        assert response.status_code in (401, 422)
        assert response.headers["content-type"] == "application/problem+json"


async def test_logout_revokes_the_family(client: httpx.AsyncClient) -> None:
    _user, tokens = await registered_session(client)
    body = {"refresh_token": tokens["refresh_token"]}
    assert (await client.post(LOGOUT, json=body, headers=bearer(tokens))).status_code == 204
    assert (await client.post(REFRESH, json=body)).status_code == 401


async def test_logout_needs_a_bearer_token_and_cannot_end_someone_elses_session(
    client: httpx.AsyncClient,
) -> None:
    _victim, victim_tokens = await registered_session(client)
    _attacker, attacker_tokens = await registered_session(client)
    body = {"refresh_token": victim_tokens["refresh_token"]}
    assert (await client.post(LOGOUT, json=body)).status_code == 401
    assert (
        await client.post(LOGOUT, json=body, headers=bearer(attacker_tokens))
    ).status_code == 204
    assert (await client.post(REFRESH, json=body)).status_code == 200


async def test_burst_of_wrong_passwords_meets_429_with_retry_after(
    client: httpx.AsyncClient,
) -> None:
    user = await register(client)
    body = {"email": user["email"], "password": "wrong password"}
    statuses = [(await client.post(LOGIN, json=body)).status_code for _ in range(10)]
    assert statuses == [401] * 10
    locked = await client.post(LOGIN, json=body)
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) > 0
    assert locked.headers["content-type"] == "application/problem+json"
    # Now even the right password is refused: guessing cannot go on.
    right = await client.post(LOGIN, json={"email": user["email"], "password": PASSWORD})
    assert right.status_code == 429


async def test_parallel_burst_cannot_race_past_the_limit(client: httpx.AsyncClient) -> None:
    user = await register(client)
    body = {"email": user["email"], "password": "wrong password"}
    responses = await asyncio.gather(*(client.post(LOGIN, json=body) for _ in range(16)))
    codes = [r.status_code for r in responses]
    assert codes.count(401) == 10 and codes.count(429) == 6


async def test_forged_tokens_are_refused_by_auth(client: httpx.AsyncClient) -> None:
    user, tokens = await registered_session(client)
    kid = header_of(tokens["access_token"])["kid"]
    impostor = TokenFactory()
    forged = [
        impostor.token(user["id"], role="admin", headers={"kid": kid}),  # another key
        impostor.token(user["id"]),  # unknown kid
        jwt.encode(
            impostor.claims(user["id"], role="admin"),
            "a-shared-secret-of-at-least-32-bytes",
            algorithm="HS256",
            headers={"kid": kid},
        ),
        tokens["access_token"][:-4] + "AAAA",  # tampered signature
        "garbage",
    ]
    for token in forged:
        response = await client.get(ME, headers=bearer(token))
        assert response.status_code == 401, token
        assert response.headers["www-authenticate"].startswith("Bearer")
