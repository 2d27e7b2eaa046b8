"""Logins, refresh-token rotation with reuse detection, logout."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import NoReturn

from prometheus_client import Counter

from auth_service.adapters.login_limiter import LoginLimiter
from auth_service.adapters.refresh_tokens import RefreshTokenRepository
from auth_service.adapters.signing_keys import KeyStore
from auth_service.adapters.users import UserRepository
from auth_service.domain.errors import (
    HashingBusy,
    InvalidCredentials,
    RefreshTokenRejected,
    RefreshTokenReused,
    TooManyFailedLogins,
)
from auth_service.domain.model import (
    User,
    access_token_claims,
    hash_refresh_token,
    new_refresh_token,
    normalise_email,
)
from auth_service.service_layer.clock import utcnow
from auth_service.service_layer.hashing import Hashing

__all__ = ["LOGINS", "Sessions", "TokenPair"]

logger = logging.getLogger("auth.sessions")

LOGINS = Counter("auth_logins_total", "Login attempts by outcome", ["outcome"])
REUSE_DETECTED = Counter(
    "auth_refresh_token_reuse_total", "Spent refresh tokens presented again (families revoked)"
)
# Failed attempts beyond this many are answered a little later each time, up to a second.
_SLOWDOWN_AFTER = 3


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


class Sessions:
    def __init__(
        self,
        *,
        users: UserRepository,
        refresh_tokens: RefreshTokenRepository,
        keys: KeyStore,
        hashing: Hashing,
        limiter: LoginLimiter,
        issuer: str,
        audience: str,
        access_ttl: timedelta,
        refresh_ttl: timedelta,
    ) -> None:
        self.users = users
        self.refresh_tokens = refresh_tokens
        self.keys = keys
        self.hashing = hashing
        self.limiter = limiter
        self.issuer = issuer
        self.audience = audience
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl

    async def _issue(self, user: User, family_id: str) -> TokenPair:
        now = utcnow()
        key = await self.keys.current(now)
        claims = access_token_claims(
            user, issuer=self.issuer, audience=self.audience, now=now, ttl=self.access_ttl
        )
        refresh_token = new_refresh_token()
        await self.refresh_tokens.add(
            hash_refresh_token(refresh_token),
            family_id=family_id,
            user_id=user.id,
            now=now,
            expires_at=now + self.refresh_ttl,
        )
        return TokenPair(key.sign(claims), refresh_token, int(self.access_ttl.total_seconds()))

    async def login(self, email: str, password: str, client: str) -> TokenPair:
        email = normalise_email(email)
        verdict = await self.limiter.attempt(email, client)
        if verdict.retry_after:
            LOGINS.labels("locked").inc()
            raise TooManyFailedLogins(verdict.retry_after)
        user = await self.users.by_email(email)
        # Verify even when the email is unknown (against a dummy hash): both failures take
        # about the same time, so timing does not tell which emails have accounts.
        try:
            matches = await self.hashing.verify(user.password_hash if user else None, password)
        except HashingBusy:
            LOGINS.labels("busy").inc()
            await self.limiter.refund(email, client)
            raise
        if user is None or not matches or user.disabled:
            LOGINS.labels("failed").inc()
            await asyncio.sleep(min(1.0, 0.1 * max(0, verdict.attempts - _SLOWDOWN_AFTER)))
            raise InvalidCredentials()
        await self.limiter.succeeded(email, client)
        if self.hashing.needs_rehash(user.password_hash):
            # The upgrade waits for a quieter login rather than refusing a good one.
            with contextlib.suppress(HashingBusy):
                new_hash = await self.hashing.hash(password)
                await self.users.set_password_hash(user.id, user.password_hash, new_hash)
        LOGINS.labels("succeeded").inc()
        return await self._issue(user, family_id=str(uuid.uuid4()))

    async def refresh(self, refresh_token: str) -> TokenPair:
        token_hash = hash_refresh_token(refresh_token)
        record = await self.refresh_tokens.spend(token_hash, utcnow())
        if record is None:
            await self._refused(token_hash)
        user = await self.users.by_id(record.user_id)
        if user is None or user.disabled:
            await self.refresh_tokens.revoke_family(record.family_id)
            raise RefreshTokenRejected("This account is disabled or no longer exists")
        pair = await self._issue(user, record.family_id)
        # One read more than the spend: a reuse or logout may have revoked the family between
        # the spend and the insert above, and then the new token must die with it.
        if await self.refresh_tokens.is_revoked(token_hash):
            await self.refresh_tokens.revoke_family(record.family_id)
            raise RefreshTokenRejected("This session was revoked")
        return pair

    async def _refused(self, token_hash: str) -> NoReturn:
        """Why a token could not be spent: a spent one is reuse, anything else a plain 401."""
        record = await self.refresh_tokens.get(token_hash)
        if record is not None and record.expires_at > utcnow() and record.spent:
            await self._reused(record.family_id)
        raise RefreshTokenRejected()

    async def _reused(self, family_id: str) -> NoReturn:
        # A spent token came back: either the client or a thief has a copy. Revoke the
        # family so neither can go on (RFC 9700, section 4.14.2).
        REUSE_DETECTED.inc()
        logger.warning("refresh token reuse", extra={"family_id": family_id})
        await self.refresh_tokens.revoke_family(family_id)
        raise RefreshTokenReused()

    async def logout(self, user_id: str, refresh_token: str) -> None:
        """Revoke the family of a refresh token of the caller's; idempotent, silent otherwise."""
        record = await self.refresh_tokens.get(hash_refresh_token(refresh_token))
        if record is not None and record.user_id == user_id:
            await self.refresh_tokens.revoke_family(record.family_id)
