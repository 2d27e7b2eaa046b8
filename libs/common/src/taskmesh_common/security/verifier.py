"""Verifying access tokens against auth's published keys, the same way in every process."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import jwt

from taskmesh_common.errors import DependencyUnavailable, NotAuthenticated
from taskmesh_common.security.jwks import HttpJwksSource, JwksSource, parse_jwks
from taskmesh_common.security.principal import Principal

if TYPE_CHECKING:
    import aiohttp

    from taskmesh_common.settings import ServiceSettings

__all__ = ["REQUIRED_CLAIMS", "TokenVerifier"]

logger = logging.getLogger("taskmesh.security")

REQUIRED_CLAIMS = ("exp", "iat", "nbf", "iss", "aud", "sub", "jti", "role")
# Symmetric and unsigned algorithms are never acceptable for tokens verified with a public key:
# allowing HS* with a public key as the secret is the classic algorithm-confusion forgery.
_FORBIDDEN_ALGORITHMS = frozenset({"none", "HS256", "HS384", "HS512"})
# Tokens are a few hundred bytes; refuse to parse megabytes of attacker input.
_MAX_TOKEN_LENGTH = 8192
# With no key at all (auth unreachable so far) retry the source at most this often.
_EMPTY_RETRY_SECONDS = 1.0
# Verified tokens remembered per process (a few hundred bytes each, with their claims).
DEFAULT_VERIFIED_CACHE_SIZE = 4096


class TokenVerifier:
    """Checks access tokens: signature by a key of the JWKS, pinned algorithms, and claims.

    Keys come from `jwks_source` (an async callable returning the JWKS) and are cached for
    `cache_seconds`. A token signed by an unknown `kid` triggers one refresh of the JWKS,
    at most once per `refresh_cooldown` seconds (so forged kids cannot flood auth). When the
    source fails, the cached keys keep being served. `verify` raises
    :class:`~taskmesh_common.errors.NotAuthenticated` for every bad token, and
    :class:`~taskmesh_common.errors.DependencyUnavailable` only when no key could ever be
    loaded (the token may be fine: the caller should retry, not log in again).

    A client sends the same access token with every request until it expires, so the last
    `verified_cache_size` tokens that passed are remembered with their principal: a token
    seen again costs a dictionary lookup instead of an Ed25519 verification and PyJWT's
    parsing. Only the exact token string hits; it is served while it has not expired (same
    leeway) and while the key that verified it is still the one the key cache holds for its
    kid (every JWKS reload makes new key objects, so a reload starts the remembered tokens
    afresh). Refused tokens are never remembered. `verified_cache_size=0` turns this off.
    """

    def __init__(
        self,
        jwks_source: JwksSource,
        *,
        issuer: str,
        audience: str,
        algorithms: Sequence[str] = ("EdDSA",),
        leeway: float = 5,
        cache_seconds: float = 300,
        refresh_cooldown: float = 10,
        clock: Callable[[], float] = time.monotonic,
        verified_cache_size: int = DEFAULT_VERIFIED_CACHE_SIZE,
    ) -> None:
        pinned = tuple(algorithms)
        if not pinned or _FORBIDDEN_ALGORITHMS.intersection(pinned):
            raise ValueError(f"refusing to verify with algorithms {pinned!r}")
        self._source = jwks_source
        self.issuer = issuer
        self.audience = audience
        self.algorithms = pinned
        self.leeway = leeway
        self.cache_seconds = cache_seconds
        self.refresh_cooldown = refresh_cooldown
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._loaded_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()
        self.refresh_count = 0
        self.verified_cache_size = max(0, verified_cache_size)
        # token -> (kid, the key object that verified it, its principal); oldest first.
        self._verified: dict[str, tuple[str, jwt.PyJWK, Principal]] = {}

    @classmethod
    def from_settings(
        cls, settings: ServiceSettings, session: aiohttp.ClientSession | None = None
    ) -> TokenVerifier:
        """A verifier fetching `{auth_url}/.well-known/jwks.json` with aiohttp."""
        source = HttpJwksSource(
            f"{settings.auth_url.rstrip('/')}/.well-known/jwks.json", session=session
        )
        return cls(
            source,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            leeway=settings.jwt_leeway_seconds,
            cache_seconds=settings.jwks_cache_seconds,
            refresh_cooldown=settings.jwks_refresh_cooldown_seconds,
            verified_cache_size=settings.jwt_verified_cache_size,
        )

    async def aclose(self) -> None:
        closer = getattr(self._source, "aclose", None)
        if closer is not None:
            await closer()

    # -- keys -------------------------------------------------------------------------------

    def _may_refresh(self) -> bool:
        if self._attempted_at is None:
            return True
        wait = (
            self.refresh_cooldown
            if self._keys
            else min(self.refresh_cooldown, _EMPTY_RETRY_SECONDS)
        )
        return self._clock() - self._attempted_at >= wait

    async def _refresh(self) -> None:
        """Reload the JWKS once; a failure keeps the keys we already have."""
        self._attempted_at = self._clock()
        self.refresh_count += 1
        try:
            keys = parse_jwks(await self._source(), self.algorithms)
        except Exception as exc:
            logger.warning("JWKS refresh failed; serving cached keys", extra={"error": str(exc)})
            return
        self._keys = keys
        self._loaded_at = self._clock()

    def _stale(self) -> bool:
        return self._loaded_at is None or self._clock() - self._loaded_at >= self.cache_seconds

    async def _key_for(self, kid: str) -> jwt.PyJWK:
        if self._stale() or kid not in self._keys:
            async with self._lock:
                # Another request may have refreshed while this one waited for the lock.
                if (self._stale() or kid not in self._keys) and self._may_refresh():
                    await self._refresh()
        key = self._keys.get(kid)
        if key is not None:
            return key
        if not self._keys and self._loaded_at is None:
            raise DependencyUnavailable("signing keys are not available yet; retry shortly")
        raise NotAuthenticated("token signed by an unknown key")

    # -- tokens -----------------------------------------------------------------------------

    def _header(self, token: str) -> tuple[str, str]:
        if not token or len(token) > _MAX_TOKEN_LENGTH:
            raise NotAuthenticated("malformed token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise NotAuthenticated("malformed token") from None
        alg, kid = header.get("alg"), header.get("kid")
        # Pinned: the header's alg must be one we chose, never a choice of the token's author.
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise NotAuthenticated("token algorithm not allowed")
        if not isinstance(kid, str) or not kid:
            raise NotAuthenticated("token has no key id")
        return alg, kid

    def _decode(self, token: str, key: jwt.PyJWK) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(self.algorithms),
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": list(REQUIRED_CLAIMS), "verify_signature": True},
            )
        except jwt.ExpiredSignatureError:
            raise NotAuthenticated("token expired") from None
        except jwt.ImmatureSignatureError:
            raise NotAuthenticated("token not valid yet") from None
        except jwt.MissingRequiredClaimError as exc:
            raise NotAuthenticated(f"token lacks the '{exc.claim}' claim") from None
        except jwt.InvalidAudienceError:
            raise NotAuthenticated("token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise NotAuthenticated("token from an unknown issuer") from None
        except jwt.InvalidSignatureError:
            raise NotAuthenticated("token signature is invalid") from None
        except jwt.InvalidAlgorithmError:
            raise NotAuthenticated("token algorithm not allowed") from None
        except jwt.PyJWTError:
            raise NotAuthenticated("invalid token") from None
        return claims

    def _remembered(self, token: str) -> Principal | None:
        entry = self._verified.get(token)
        if entry is None:
            return None
        kid, key, principal = entry
        # PyJWT refuses once exp <= now - leeway; nbf and iat only ever get further behind.
        expired = time.time() >= principal.expires_at.timestamp() + self.leeway
        if expired or self._stale() or self._keys.get(kid) is not key:
            del self._verified[token]
            return None
        return principal

    def _remember(self, token: str, kid: str, key: jwt.PyJWK, principal: Principal) -> None:
        if not self.verified_cache_size:
            return
        self._verified[token] = (kid, key, principal)
        while len(self._verified) > self.verified_cache_size:
            del self._verified[next(iter(self._verified))]

    async def verify(self, token: str) -> Principal:
        """The principal a valid access token proves; NotAuthenticated otherwise."""
        remembered = self._remembered(token)
        if remembered is not None:
            return remembered
        _alg, kid = self._header(token)
        key = await self._key_for(kid)
        claims = self._decode(token, key)
        sub, role, jti = claims.get("sub"), claims.get("role"), claims.get("jti")
        for name, value in (("sub", sub), ("role", role), ("jti", jti)):
            if not isinstance(value, str) or not value:
                raise NotAuthenticated(f"token's '{name}' claim is not a non-empty string")
        assert isinstance(sub, str) and isinstance(role, str) and isinstance(jti, str)
        principal = Principal(
            user_id=sub,
            role=role,
            token_id=jti,
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
            # Read-only: a remembered principal is handed to every request with this token.
            claims=MappingProxyType(claims),
        )
        self._remember(token, kid, key, principal)
        return principal
