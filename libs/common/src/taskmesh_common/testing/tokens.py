"""Minting access tokens in tests, with a key pair of the test's own.

tokens = TokenFactory()
app.state.verifier = tokens.verifier()           # or TokenVerifier(tokens.jwks, ...)
headers = tokens.auth_header(user_id="u1")      # {"Authorization": "Bearer ..."}
expired = tokens.token(exp=tokens.now() - 3600)  # overrides forge bad tokens
no_sub = tokens.token(sub=None)                  # None removes a claim
"""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from taskmesh_common.security.verifier import TokenVerifier

__all__ = ["TokenFactory"]

ACCESS_TOKEN_SECONDS = 15 * 60


class _SigningKey:
    def __init__(self) -> None:
        self.kid = secrets.token_hex(8)
        self.private_key = Ed25519PrivateKey.generate()

    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = OKPAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "alg": "EdDSA", "use": "sig"}


class TokenFactory:
    """An Ed25519 key (with a kid), its JWKS, and valid or deliberately broken tokens."""

    def __init__(self, issuer: str = "taskmesh-auth", audience: str = "taskmesh") -> None:
        self.issuer = issuer
        self.audience = audience
        self._keys = [_SigningKey()]
        # How often a verifier asked for the JWKS: tests of caching and cool-downs read it.
        self.jwks_calls = 0
        self.jwks_fails = False
        self._unpublished: set[str] = set()

    @property
    def kid(self) -> str:
        """The kid of the key that signs new tokens."""
        return self._keys[-1].kid

    @staticmethod
    def now() -> int:
        return int(time.time())

    def rotate(self, *, publish: bool = True) -> str:
        """A new signing key; `publish=False` keeps it out of the JWKS (an unknown kid).

        `publish(kid)` later adds it, as auth does when it rotates.
        """
        key = _SigningKey()
        self._keys.append(key)
        if not publish:
            self._unpublished.add(key.kid)
        return key.kid

    def publish(self, kid: str) -> None:
        self._unpublished.discard(kid)

    def unpublish(self, kid: str) -> None:
        """Take a key out of the JWKS, as auth does when it retires one."""
        self._unpublished.add(kid)

    def public_key_pem(self) -> bytes:
        return (
            self._keys[-1]
            .private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    async def jwks(self) -> dict[str, Any]:
        """The JWKS document: an async source for :class:`TokenVerifier`."""
        self.jwks_calls += 1
        if self.jwks_fails:
            raise ConnectionError("JWKS source made to fail by the test")
        return {"keys": [k.public_jwk() for k in self._keys if k.kid not in self._unpublished]}

    def verifier(self, **kwargs: Any) -> TokenVerifier:
        return TokenVerifier(self.jwks, issuer=self.issuer, audience=self.audience, **kwargs)

    def claims(
        self, user_id: str | None = None, role: str = "user", **overrides: Any
    ) -> dict[str, Any]:
        now = self.now()
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": user_id or uuid.uuid4().hex,
            "role": role,
            "iat": now,
            "nbf": now,
            "exp": now + ACCESS_TOKEN_SECONDS,
            "jti": uuid.uuid4().hex,
        }
        for name, value in overrides.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims

    def sign(self, claims: dict[str, Any], *, headers: dict[str, Any] | None = None) -> str:
        """Sign arbitrary claims with the current key (headers may override kid/typ)."""
        key = self._keys[-1]
        return jwt.encode(
            claims,
            key.private_key,
            algorithm="EdDSA",
            headers={"kid": key.kid, "typ": "JWT", **(headers or {})},
        )

    def token(
        self,
        user_id: str | None = None,
        role: str = "user",
        *,
        headers: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> str:
        """A valid access token; claim overrides (None removes one) forge invalid ones."""
        return self.sign(self.claims(user_id, role, **overrides), headers=headers)

    def auth_header(
        self, user_id: str | None = None, role: str = "user", **overrides: Any
    ) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user_id, role, **overrides)}"}
