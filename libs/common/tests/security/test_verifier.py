"""The token verifier refuses every well-known forgery and caches keys sensibly."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from taskmesh_common.errors import DependencyUnavailable, NotAuthenticated
from taskmesh_common.security import TokenVerifier
from taskmesh_common.testing.tokens import TokenFactory


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handmade(header: dict[str, Any], claims: dict[str, Any], signature: bytes) -> str:
    head = b64(json.dumps(header).encode())
    body = b64(json.dumps(claims).encode())
    return f"{head}.{body}.{b64(signature)}"


def jwt_kid(token: str) -> str:
    kid: str = jwt.get_unverified_header(token)["kid"]
    return kid


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def tokens() -> TokenFactory:
    return TokenFactory()


async def rejected(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(NotAuthenticated) as caught:
        await verifier.verify(token)
    assert caught.value.headers["WWW-Authenticate"].startswith("Bearer")
    return caught.value.detail


async def test_valid_token_gives_its_principal(tokens: TokenFactory) -> None:
    token = tokens.token("user-1", role="admin")
    principal = await tokens.verifier().verify(token)
    assert (principal.user_id, principal.role, principal.is_admin) == ("user-1", "admin", True)
    assert principal.token_id
    assert principal.expires_at.timestamp() > tokens.now()
    assert principal.claims["iss"] == "taskmesh-auth"


async def test_tampered_payload_fails_the_signature(tokens: TokenFactory) -> None:
    head, _body, sig = tokens.token("user-1").split(".")
    forged_body = b64(json.dumps(tokens.claims("user-1", role="admin")).encode())
    detail = await rejected(tokens.verifier(), f"{head}.{forged_body}.{sig}")
    assert "signature" in detail


async def test_token_signed_by_another_key_with_the_same_kid_is_refused(
    tokens: TokenFactory,
) -> None:
    impostor = TokenFactory()
    token = impostor.token("user-1", headers={"kid": tokens.kid})
    assert "signature" in await rejected(tokens.verifier(), token)


async def test_unsigned_alg_none_token_is_refused(tokens: TokenFactory) -> None:
    token = handmade({"alg": "none", "kid": tokens.kid}, tokens.claims("user-1"), b"")
    assert "algorithm" in await rejected(tokens.verifier(), token)


async def test_hs256_signed_with_the_public_key_is_refused(tokens: TokenFactory) -> None:
    # Algorithm confusion: an attacker signs with HMAC using the (public) verification key.
    header = {"alg": "HS256", "kid": tokens.kid, "typ": "JWT"}
    claims = tokens.claims("user-1", role="admin")
    head = b64(json.dumps(header).encode())
    body = b64(json.dumps(claims).encode())
    for secret in (tokens.public_key_pem(), json.dumps((await tokens.jwks())["keys"][0]).encode()):
        mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
        assert "algorithm" in await rejected(tokens.verifier(), f"{head}.{body}.{b64(mac)}")


def test_verifier_refuses_to_be_configured_with_symmetric_or_none_algorithms(
    tokens: TokenFactory,
) -> None:
    for algorithms in (("HS256",), ("EdDSA", "none"), ()):
        with pytest.raises(ValueError):
            tokens.verifier(algorithms=algorithms)


async def test_expired_token_is_refused(tokens: TokenFactory) -> None:
    now = tokens.now()
    token = tokens.token(iat=now - 1000, nbf=now - 1000, exp=now - 60)
    assert await rejected(tokens.verifier(), token) == "token expired"


async def test_expiry_within_the_leeway_is_still_accepted(tokens: TokenFactory) -> None:
    token = tokens.token(exp=tokens.now() - 2)
    assert (await tokens.verifier(leeway=5).verify(token)).user_id


async def test_token_not_valid_before_a_future_nbf_is_refused(tokens: TokenFactory) -> None:
    token = tokens.token(nbf=tokens.now() + 120)
    assert await rejected(tokens.verifier(), token) == "token not valid yet"


async def test_token_issued_in_the_future_is_refused(tokens: TokenFactory) -> None:
    token = tokens.token(iat=tokens.now() + 120)
    assert "not valid yet" in await rejected(tokens.verifier(), token)


async def test_wrong_issuer_is_refused(tokens: TokenFactory) -> None:
    assert "issuer" in await rejected(tokens.verifier(), tokens.token(iss="evil-auth"))


async def test_wrong_audience_is_refused(tokens: TokenFactory) -> None:
    assert "audience" in await rejected(tokens.verifier(), tokens.token(aud="other-app"))


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf", "iss", "aud", "sub", "jti", "role"])
async def test_token_missing_a_required_claim_is_refused(tokens: TokenFactory, claim: str) -> None:
    detail = await rejected(tokens.verifier(), tokens.token(**{claim: None}))
    assert claim in detail


async def test_empty_subject_is_refused(tokens: TokenFactory) -> None:
    assert "sub" in await rejected(tokens.verifier(), tokens.token(sub=""))


async def test_token_without_kid_is_refused(tokens: TokenFactory) -> None:
    claims = tokens.claims("user-1")
    # A token whose header has no kid at all (headers override cannot remove one).
    head, body, sig = tokens.sign(claims).split(".")
    header = json.loads(base64.urlsafe_b64decode(head + "=="))
    del header["kid"]
    token = f"{b64(json.dumps(header).encode())}.{body}.{sig}"
    assert "key id" in await rejected(tokens.verifier(), token)


@pytest.mark.parametrize(
    "garbage",
    ["", "not-a-token", "a.b.c", "....", "eyJhbGciOiJFZERTQSJ9.%%%.xx", "x" * 10_000],
)
async def test_garbage_is_refused_as_malformed(tokens: TokenFactory, garbage: str) -> None:
    with pytest.raises(NotAuthenticated):
        await tokens.verifier().verify(garbage)


async def test_unknown_kid_refreshes_the_jwks_once_per_cooldown(tokens: TokenFactory) -> None:
    clock = FakeClock()
    verifier = tokens.verifier(refresh_cooldown=10, clock=clock)
    await verifier.verify(tokens.token())
    assert tokens.jwks_calls == 1

    new_kid = tokens.rotate(publish=False)
    unknown = tokens.token()
    assert "unknown key" in await rejected(verifier, unknown)
    assert tokens.jwks_calls == 1, "the first fetch happened just now: still cooling down"

    clock.now += 11
    for _ in range(5):
        assert "unknown key" in await rejected(verifier, unknown)
    assert tokens.jwks_calls == 2, "a flood of unknown kids costs one refresh"

    tokens.publish(new_kid)
    assert "unknown key" in await rejected(verifier, unknown)
    clock.now += 11
    assert (await verifier.verify(unknown)).user_id
    assert tokens.jwks_calls == 3


async def test_cached_keys_are_served_when_the_source_fails(tokens: TokenFactory) -> None:
    clock = FakeClock()
    verifier = tokens.verifier(cache_seconds=60, refresh_cooldown=10, clock=clock)
    await verifier.verify(tokens.token())
    tokens.jwks_fails = True
    clock.now += 120  # the cache is stale, the refresh fails, the old keys still verify
    assert (await verifier.verify(tokens.token())).user_id
    assert tokens.jwks_calls == 2


async def test_stale_cache_is_refreshed(tokens: TokenFactory) -> None:
    clock = FakeClock()
    verifier = tokens.verifier(cache_seconds=60, clock=clock)
    await verifier.verify(tokens.token())
    await verifier.verify(tokens.token())
    assert tokens.jwks_calls == 1
    clock.now += 61
    await verifier.verify(tokens.token())
    assert tokens.jwks_calls == 2


async def test_no_keys_at_all_is_a_dependency_failure_not_a_bad_token(
    tokens: TokenFactory,
) -> None:
    tokens.jwks_fails = True
    with pytest.raises(DependencyUnavailable):
        await tokens.verifier().verify(tokens.token())


async def test_jwks_keys_of_other_algorithms_or_without_kid_are_ignored() -> None:
    from taskmesh_common.security import parse_jwks

    tokens = TokenFactory()
    good = (await tokens.jwks())["keys"][0]
    document = {
        "keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac", "alg": "HS256"},
            {**good, "kid": None},
            {**good, "kid": "enc", "use": "enc"},
            "junk",
            good,
        ]
    }
    assert list(parse_jwks(document, ("EdDSA",))) == [tokens.kid]


# -- remembered tokens ---------------------------------------------------------------------


def count_decodes(verifier: TokenVerifier, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every token the verifier checks in full (signature and claims) lands in the list."""
    decoded: list[str] = []
    full = verifier._decode

    def spy(token: str, key: Any) -> dict[str, Any]:
        decoded.append(token)
        return full(token, key)

    monkeypatch.setattr(verifier, "_decode", spy)
    return decoded


async def test_a_token_seen_again_is_not_verified_again(
    tokens: TokenFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier = tokens.verifier()
    decoded = count_decodes(verifier, monkeypatch)
    token = tokens.token("user-1")
    first = await verifier.verify(token)
    for _ in range(3):
        assert await verifier.verify(token) == first
    assert decoded == [token]
    with pytest.raises(TypeError):  # one request cannot change what the next one is handed
        first.claims["role"] = "admin"  # type: ignore[index]


async def test_a_remembered_token_is_refused_once_it_expires(tokens: TokenFactory) -> None:
    verifier = tokens.verifier(leeway=0)
    expires = tokens.now() + 2
    token = tokens.token(exp=expires)
    assert (await verifier.verify(token)).user_id
    while time.time() < expires:
        await asyncio.sleep(0.05)
    assert await rejected(verifier, token) == "token expired"


async def test_remembered_tokens_are_checked_afresh_after_a_jwks_reload(
    tokens: TokenFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    verifier = tokens.verifier(cache_seconds=60, clock=clock)
    decoded = count_decodes(verifier, monkeypatch)
    token = tokens.token()
    await verifier.verify(token)
    clock.now += 61
    await verifier.verify(token)
    await verifier.verify(token)
    assert (decoded, tokens.jwks_calls) == ([token, token], 2)


async def test_a_token_whose_key_left_the_jwks_is_refused_though_remembered(
    tokens: TokenFactory,
) -> None:
    clock = FakeClock()
    verifier = tokens.verifier(cache_seconds=60, clock=clock)
    token = tokens.token()
    await verifier.verify(token)
    tokens.rotate()
    tokens.unpublish(jwt_kid(token))  # auth retired the key that signed it
    clock.now += 61
    assert "unknown key" in await rejected(verifier, token)


async def test_the_remembered_tokens_are_bounded_and_refusals_never_remembered(
    tokens: TokenFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier = tokens.verifier(verified_cache_size=2)
    decoded = count_decodes(verifier, monkeypatch)
    first, second, third = (tokens.token() for _ in range(3))
    for token in (first, second, third, third, second, first):
        await verifier.verify(token)
    assert decoded == [first, second, third, first], "the oldest was forgotten"

    head, _body, sig = first.split(".")
    forged = f"{head}.{b64(json.dumps(tokens.claims(role='admin')).encode())}.{sig}"
    for _ in range(2):
        assert "signature" in await rejected(verifier, forged)
    assert decoded.count(forged) == 2


async def test_remembering_can_be_turned_off(
    tokens: TokenFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier = tokens.verifier(verified_cache_size=0)
    decoded = count_decodes(verifier, monkeypatch)
    token = tokens.token()
    await verifier.verify(token)
    await verifier.verify(token)
    assert decoded == [token, token]
