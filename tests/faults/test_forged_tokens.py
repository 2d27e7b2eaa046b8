"""A catalogue of forged access tokens, refused by the gateway and by each service directly.

Forgeries that need a valid signature on wrong claims (expired, wrong issuer...) are signed
with auth's real key, read from auth's database: each then fails on its claim alone.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from faults_client import User, assert_problem, new_user, record
from faults_stack import Suite
from pymongo import DESCENDING, MongoClient

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    parts = [json.dumps(header).encode(), json.dumps(claims).encode()]
    return ".".join([*(_b64(p) for p in parts), _b64(signature)])


def _auth_signing_key(suite: Suite) -> tuple[str, Ed25519PrivateKey]:
    db_name = f"{suite.env['TASKMESH_MONGO_DB_PREFIX']}auth"
    mongo: MongoClient[dict[str, Any]]
    with MongoClient(suite.env["TASKMESH_MONGO_URL"], serverSelectionTimeoutMS=5000) as mongo:
        doc = mongo[db_name]["signing_keys"].find_one({}, sort=[("generation", DESCENDING)])
    assert doc is not None
    key = serialization.load_pem_private_key(doc["private_pem"].encode(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return str(doc["_id"]), key


def _catalogue(suite: Suite, victim: User, jwks: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """(a token signed like the forgeries but valid, {forgery: token})."""
    kid, real_key = _auth_signing_key(suite)
    now = int(time.time())
    good = {
        "iss": "taskmesh-auth",
        "aud": "taskmesh",
        "sub": victim.id,
        "role": "user",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
    }

    def real(header: dict[str, Any] | None = None, **changes: Any) -> str:
        claims = {k: v for k, v in {**good, **changes}.items() if v is not None}
        return jwt.encode(
            claims, real_key, algorithm="EdDSA", headers={"kid": kid, **(header or {})}
        )

    attacker = Ed25519PrivateKey.generate()
    head, body, sig = victim.token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    public_jwk = next(k for k in jwks["keys"] if k["kid"] == kid)
    hs_secret = json.dumps(public_jwk).encode()
    hs_input = f"{_b64(json.dumps({'alg': 'HS256', 'kid': kid}).encode())}.{body}"
    attacker_jwk = jwt.algorithms.OKPAlgorithm.to_jwk(attacker.public_key(), as_dict=True)
    return real(), {
        "tampered signature": f"{head}.{body}.{sig[:-4]}{'AAAA' if sig[-4:] != 'AAAA' else 'BBBB'}",
        "tampered claims (role admin, old signature)": ".".join(
            [head, _b64(json.dumps({**claims, "role": "admin"}).encode()), sig]
        ),
        "alg none": _unsigned({"alg": "none", "kid": kid, "typ": "JWT"}, good),
        "alg None, signature kept": _unsigned({"alg": "None", "kid": kid}, good, b"x" * 64),
        "HS256 keyed with the public JWK (algorithm confusion)": hs_input
        + "."
        + _b64(hmac.new(hs_secret, hs_input.encode(), hashlib.sha256).digest()),
        "HS256 keyed with the public x": _hs256(kid, good, public_jwk["x"].encode()),
        "signed by another key under the real kid": jwt.encode(
            good, attacker, algorithm="EdDSA", headers={"kid": kid}
        ),
        "unknown kid": jwt.encode(good, attacker, algorithm="EdDSA", headers={"kid": "nope"}),
        "attacker key embedded as jwk header": jwt.encode(
            good, attacker, algorithm="EdDSA", headers={"kid": kid, "jwk": attacker_jwk}
        ),
        "jku to elsewhere": jwt.encode(
            good,
            attacker,
            algorithm="EdDSA",
            headers={"kid": "evil", "jku": "http://127.0.0.1:9/jwks.json"},
        ),
        "expired an hour ago": real(exp=now - 3600, iat=now - 4000, nbf=now - 4000),
        "not valid before an hour from now": real(nbf=now + 3600),
        "wrong issuer": real(iss="someone-else"),
        "wrong audience": real(aud="another-api"),
        "no subject": real(sub=None),
        "no expiry": real(exp=None),
        "no issued-at": real(iat=None),
        "garbage": "not-a-jwt",
        "two parts": f"{head}.{body}",
    }


def _hs256(kid: str, claims: dict[str, Any], secret: bytes) -> str:
    signing_input = ".".join(
        _b64(json.dumps(p).encode()) for p in ({"alg": "HS256", "kid": kid}, claims)
    )
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


async def test_forged_tokens_are_refused_at_the_gateway_and_by_every_service(
    suite: Suite, gateway: httpx.AsyncClient
) -> None:
    victim = await new_user(gateway)
    jwks = (await gateway.get("/.well-known/jwks.json")).json()
    control, forgeries = await asyncio.to_thread(_catalogue, suite, victim, jwks)
    # The catalogue is built right: the same key and claims, unforged, are let in.
    me = await gateway.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {control}"})
    assert me.status_code == 200 and me.json()["id"] == victim.id
    targets = {
        "gateway /tasks": f"{suite.gateway_url}/api/v1/tasks",
        "gateway /auth/me": f"{suite.gateway_url}/api/v1/auth/me",
        "gateway /analytics": f"{suite.gateway_url}/api/v1/analytics/summary",
        "tasks directly": f"{suite.urls['tasks']}/api/v1/tasks",
        "analytics directly": f"{suite.urls['analytics']}/api/v1/analytics/summary",
        "auth directly": f"{suite.urls['auth']}/api/v1/auth/me",
    }
    headers = {name: f"Bearer {token}" for name, token in forgeries.items()}
    headers |= {"scheme without token": "Bearer", "basic credentials": "Basic dXNlcjpwYXNz"}
    let_in = []
    async with httpx.AsyncClient(timeout=10) as client:
        for name, value in headers.items():
            for target, url in targets.items():
                response = await client.get(url, headers={"Authorization": value})
                if response.status_code != 401:
                    let_in.append((name, target, response.status_code))
                    continue
                assert_problem(response, 401)
                assert response.headers["www-authenticate"].startswith("Bearer")
    record(
        "forged_tokens",
        forgeries=len(headers),
        targets=len(targets),
        requests=len(headers) * len(targets),
        let_in=len(let_in),
    )
    assert not let_in, let_in
