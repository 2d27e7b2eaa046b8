"""Accounts and tokens: the rules, as pure Python."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

__all__ = [
    "ACCESS_TOKEN_TTL",
    "REFRESH_FAMILY_LIFETIME",
    "REFRESH_TOKEN_TTL",
    "Role",
    "User",
    "access_token_claims",
    "epoch_ms",
    "hash_refresh_token",
    "new_refresh_token",
    "new_user_id",
    "normalise_email",
]

Role = Literal["user", "admin"]
ROLES: tuple[Role, ...] = ("user", "admin")

# At most 15 minutes: revocation ends a token at once, but while Redis is away nothing can
# tell a revoked token from a good one, so none lives longer than this.
ACCESS_TOKEN_TTL = timedelta(minutes=15)
REFRESH_TOKEN_TTL = timedelta(days=7)
# A session (refresh family) ends this long after its login, however often it is refreshed.
REFRESH_FAMILY_LIFETIME = timedelta(days=30)
PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 1024


@dataclass(frozen=True)
class User:
    id: str
    email: str
    display_name: str | None
    role: Role
    disabled: bool
    created_at: datetime
    password_hash: str


def new_user_id() -> str:
    return str(uuid.uuid4())


def normalise_email(email: str) -> str:
    """One spelling per mailbox for uniqueness: surrounding blanks dropped, all lower case.

    Lower-casing the local part is stricter than RFC 5321 but what every user expects.
    """
    return email.strip().lower()


def new_refresh_token() -> str:
    # 32 random bytes = 256 bits, URL-safe; only its hash is ever stored.
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    """SHA-256 is enough here (unlike passwords): the token has 256 bits of entropy."""
    return hashlib.sha256(token.encode()).hexdigest()


def epoch_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def access_token_claims(
    user: User,
    *,
    issuer: str,
    audience: str,
    now: datetime,
    session_id: str,
    ttl: timedelta = ACCESS_TOKEN_TTL,
) -> dict[str, Any]:
    """`iat` keeps milliseconds (RFC 7519 allows a fraction): revocation compares it with a
    "not before" in milliseconds, so a token issued right after a revocation works.
    `sid` names the session (refresh family) that logout of that session revokes."""
    issued = int(now.timestamp())
    return {
        "iss": issuer,
        "aud": audience,
        "sub": user.id,
        "role": user.role,
        "iat": epoch_ms(now) / 1000,
        "nbf": issued,
        "exp": issued + int(ttl.total_seconds()),
        "jti": uuid.uuid4().hex,
        "sid": session_id,
    }
