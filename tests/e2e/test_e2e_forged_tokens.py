"""Forged tokens of every well-known kind, refused by the gateway and by a service on its own."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

TASKS = "/api/v1/tasks"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(**overrides):
    now = int(time.time())
    claims = {
        "iss": "taskmesh-auth",
        "aud": "taskmesh",
        "sub": str(uuid.uuid4()),
        "role": "admin",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
    }
    return claims | overrides


def _unsigned(header: dict, claims: dict) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}."


def _hs256(header: dict, claims: dict, secret: bytes) -> str:
    # By hand: PyJWT itself refuses a JWK as an HMAC secret, an attacker's tool would not.
    signing_input = (
        f"{_b64(json.dumps({'alg': 'HS256', **header}).encode())}."
        f"{_b64(json.dumps(claims).encode())}"
    )
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def _flip_signature(token: str) -> str:
    head, body, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[len(raw) // 2] ^= 0xFF
    return f"{head}.{body}.{_b64(bytes(raw))}"


def _swap_payload(token: str, **changes) -> str:
    head, body, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return f"{head}.{_b64(json.dumps(claims | changes).encode())}.{signature}"


async def _forged_tokens(api, forger) -> dict[str, str]:
    """name -> token; each would pass if the corresponding check were missing."""
    user = await api.new_user()
    jwks = (await api.client.get("/.well-known/jwks.json")).json()
    public_jwk = next(k for k in jwks["keys"] if k["kid"] == forger.kid)
    attacker = Ed25519PrivateKey.generate()
    attacker_jwk = OKPAlgorithm.to_jwk(attacker.public_key(), as_dict=True)
    now = int(time.time())
    real_header = {"kid": forger.kid, "typ": "JWT"}
    return {
        "tampered-signature": _flip_signature(user.access_token),
        "payload-changed-to-admin": _swap_payload(user.access_token, role="admin"),
        "alg-none": _unsigned({"alg": "none", **real_header}, _claims()),
        "alg-none-uppercase": _unsigned({"alg": "NONE", **real_header}, _claims()),
        "hs256-with-public-jwk-as-secret": _hs256(
            real_header, _claims(), json.dumps(public_jwk).encode()
        ),
        "hs256-with-public-key-bytes-as-secret": _hs256(
            real_header, _claims(), base64.urlsafe_b64decode(public_jwk["x"] + "==")
        ),
        "attacker-key-under-real-kid": jwt.encode(
            _claims(), attacker, algorithm="EdDSA", headers=real_header
        ),
        "attacker-key-embedded-as-jwk-header": jwt.encode(
            _claims(), attacker, algorithm="EdDSA", headers={"jwk": attacker_jwk, "typ": "JWT"}
        ),
        "unknown-kid": jwt.encode(
            _claims(), attacker, algorithm="EdDSA", headers={"kid": "no-such-key", "typ": "JWT"}
        ),
        "expired": forger.sign(_claims(iat=now - 7200, nbf=now - 7200, exp=now - 3600)),
        "not-yet-valid": forger.sign(_claims(nbf=now + 3600)),
        "wrong-issuer": forger.sign(_claims(iss="https://evil.example.com")),
        "wrong-audience": forger.sign(_claims(aud="someone-else")),
        "no-subject": forger.sign({k: v for k, v in _claims().items() if k != "sub"}),
        "garbage": "garbage",
        "three-garbage-parts": "not.a.jwt",
    }


async def test_a_well_formed_token_signed_by_auth_is_accepted_which_makes_the_rest_meaningful(
    api, forger, suite
):
    token = forger.sign(_claims(role="user"))
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await api.client.get(TASKS, headers=bearer)).status_code == 200
    async with httpx.AsyncClient(base_url=suite.urls["tasks"], timeout=10) as direct:
        assert (await direct.get(TASKS, headers=bearer)).status_code == 200


@pytest.mark.parametrize("target", ["gateway", "tasks-service-directly"])
async def test_every_forged_token_is_refused_with_401_and_a_bearer_challenge(
    api, forger, suite, problem, target
):
    forged = await _forged_tokens(api, forger)
    base_url = suite.gateway_url if target == "gateway" else suite.urls["tasks"]
    accepted = {}
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        for name, token in forged.items():
            response = await client.get(TASKS, headers={"Authorization": f"Bearer {token}"})
            if response.status_code != 401 or not response.headers.get(
                "WWW-Authenticate", ""
            ).startswith("Bearer"):
                accepted[name] = (response.status_code, response.headers.get("WWW-Authenticate"))
                continue
            problem(response, 401)
    assert accepted == {}, f"not refused with 401 + WWW-Authenticate: {accepted}"


async def test_other_authorization_schemes_and_missing_tokens_are_401(api, problem):
    for headers in ({}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"}):
        response = await api.client.get(TASKS, headers=headers)
        problem(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_client_sent_identity_headers_do_not_make_a_request_authenticated(api, problem):
    response = await api.client.get(
        TASKS, headers={"X-User-Id": str(uuid.uuid4()), "X-User-Role": "admin"}
    )
    problem(response, 401)
