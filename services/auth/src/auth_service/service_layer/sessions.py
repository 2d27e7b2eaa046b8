"""Logins, refresh-token rotation with reuse detection, logout, password change.

Ending access: every path that should stop a user's (or a session's) access tokens records
a "not before" in Redis (`Revoker`), which the gateway and the services check. Tokens are
signed from a read of the user; the user is read once more after signing, so a disable,
role change or deletion landing between the two refuses the token instead of letting an
old role live on past the revocation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NoReturn

from prometheus_client import Counter
from taskmesh_common.security import Revoker

from auth_service.adapters.login_limiter import LoginLimiter
from auth_service.adapters.refresh_tokens import RefreshTokenRepository
from auth_service.adapters.signing_keys import KeyStore
from auth_service.adapters.users import UserRepository
from auth_service.domain.errors import (
    AccountUnavailable,
    HashingBusy,
    InvalidCredentials,
    RefreshTokenRejected,
    RefreshTokenReused,
    TooManyFailedLogins,
    WrongPassword,
)
from auth_service.domain.model import (
    REFRESH_FAMILY_LIFETIME,
    User,
    access_token_claims,
    epoch_ms,
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
        revoker: Revoker,
        family_lifetime: timedelta = REFRESH_FAMILY_LIFETIME,
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
        self.revoker = revoker
        self.family_lifetime = family_lifetime

    async def _issue(
        self, user: User, family_id: str, family_expires_at: datetime | None = None
    ) -> TokenPair:
        now = utcnow()
        key = await self.keys.current(now)
        claims = access_token_claims(
            user,
            issuer=self.issuer,
            audience=self.audience,
            now=now,
            session_id=family_id,
            ttl=self.access_ttl,
        )
        refresh_token = new_refresh_token()
        await self.refresh_tokens.add(
            hash_refresh_token(refresh_token),
            family_id=family_id,
            user_id=user.id,
            now=now,
            expires_at=now + self.refresh_ttl,
            family_expires_at=family_expires_at or now + self.family_lifetime,
        )
        # Read after `now`: a change before it shows here; one after it revokes this token.
        fresh = await self.users.by_id(user.id)
        if fresh is None or fresh.disabled or fresh.role != user.role:
            await self.refresh_tokens.revoke_family(family_id)
            raise AccountUnavailable("This account changed while signing in; try again")
        return TokenPair(key.sign(claims), refresh_token, int(self.access_ttl.total_seconds()))

    async def login(self, email: str, password: str, client: str) -> TokenPair:
        email = normalise_email(email)
        try:
            self.hashing.refuse_if_full()
        except HashingBusy:
            LOGINS.labels("busy").inc()
            raise
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
        pair = await self._issue(user, record.family_id, record.family_expires_at)
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

    async def logout(self, user_id: str, refresh_token: str, session_id: str | None) -> None:
        """End a session of the caller's: its refresh family, and the access tokens of that
        family and of the caller's own session (`session_id`). Idempotent, silent otherwise."""
        now_ms = epoch_ms(utcnow())
        if session_id:
            await self.revoker.revoke_session(session_id, now_ms)
        record = await self.refresh_tokens.get(hash_refresh_token(refresh_token))
        if record is not None and record.user_id == user_id:
            await self.revoker.revoke_session(record.family_id, now_ms)
            await self.refresh_tokens.revoke_family(record.family_id)

    async def end_session(self, refresh_token: str) -> None:
        """End the session (refresh family) a refresh token belongs to, with its access
        tokens; silent for an unknown token. For a credential that is its own proof (the
        browser's cookie)."""
        record = await self.refresh_tokens.get(hash_refresh_token(refresh_token))
        if record is not None:
            await self.revoker.revoke_session(record.family_id, epoch_ms(utcnow()))
            await self.refresh_tokens.revoke_family(record.family_id)

    async def logout_everywhere(self, user_id: str) -> None:
        """Every session of the user ends: refresh families and access tokens."""
        await self.revoke_all(user_id)

    async def revoke_all(self, user_id: str) -> None:
        # Redis first: when it is away this fails (503) before anything changed.
        await self.revoker.revoke_user(user_id, epoch_ms(utcnow()))
        await self.refresh_tokens.revoke_user(user_id)
        # Again after: a refresh that was signing meanwhile is older than this.
        await self.revoker.revoke_user(user_id, epoch_ms(utcnow()))

    async def confirm_password(self, user_id: str, password: str, client: str) -> User:
        """The caller's account, once `password` proves it is theirs; guesses count against
        the same failure limit as logins."""
        user = await self.users.by_id(user_id)
        if user is None or user.disabled:
            raise AccountUnavailable()
        verdict = await self.limiter.attempt(user.email, client)
        if verdict.retry_after:
            raise TooManyFailedLogins(verdict.retry_after)
        try:
            matches = await self.hashing.verify(user.password_hash, password)
        except HashingBusy:
            await self.limiter.refund(user.email, client)
            raise
        if not matches:
            raise WrongPassword()
        await self.limiter.succeeded(user.email, client)
        return user

    async def change_password(self, user_id: str, current: str, new: str, client: str) -> TokenPair:
        """Set a new password; every session ends, and the caller gets a new one."""
        user = await self.confirm_password(user_id, current, client)
        new_hash = await self.hashing.hash(new)
        if not await self.users.set_password_hash(user.id, user.password_hash, new_hash):
            raise AccountUnavailable("The password changed meanwhile; log in again")
        await self.revoke_all(user.id)
        return await self._issue(user, family_id=str(uuid.uuid4()))
