"""Access tokens that stop working before they expire: a "not before" per user and session.

Auth writes, in Redis, the moment (epoch milliseconds) before which a user's tokens, or one
session's tokens, are no longer accepted:

    {prefix}revoked:user:{user_id}      logout everywhere, password change, disable, role
                                         change, account deletion
    {prefix}revoked:session:{sid}       logout of one session (refresh family)

A token is revoked when its `iat` (milliseconds precise) is earlier than either value. A
token issued right after the revocation has a later `iat` and works. Each key lives as long
as a token issued before it could (access-token lifetime plus leeway), then goes away.

The gateway reads both keys in the same Redis round trip as its rate limit. Services check
again for writes and admin decisions (`LivePrincipal`, `AdminPrincipal`): the first such
request after the revocation is refused, whichever path it took to the service.

Redis away: a write follows `fail_open` (true by default, like the gateway's rate limiter:
the token is still verified and unexpired, only its revocation is unknown); an admin
decision is always refused with 503, since a demoted admin acting is the larger harm.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import Counter
from redis.asyncio import Redis

from taskmesh_common.batching import GroupCommit
from taskmesh_common.errors import DependencyUnavailable, NotAuthenticated
from taskmesh_common.security.principal import Principal

__all__ = [
    "REVOCATION_UNCHECKED",
    "RevocationCheck",
    "Revoked",
    "Revoker",
    "is_revoked",
    "issued_ms",
    "revocation_keys",
    "session_key",
    "user_key",
]

logger = logging.getLogger("taskmesh.revocation")

REVOCATION_UNCHECKED = Counter(
    "taskmesh_revocation_unchecked_total",
    "Requests let through without a revocation check because Redis did not answer",
    ["kind"],
)

# Sets the key only if it is absent or holds an earlier moment: of two revocations racing,
# the later one stays. ARGV: milliseconds, time to live in milliseconds.
_RAISE = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local value = tonumber(ARGV[1])
if value > current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 1
"""


class Revoked(NotAuthenticated):
    def __init__(self) -> None:
        super().__init__("This token was revoked; log in or refresh again")


def user_key(prefix: str, user_id: str) -> str:
    return f"{prefix}revoked:user:{user_id}"


def session_key(prefix: str, session_id: str) -> str:
    return f"{prefix}revoked:session:{session_id}"


def issued_ms(claims: Mapping[str, Any]) -> int:
    """The token's `iat` in milliseconds (auth writes it with a millisecond fraction)."""
    iat = claims.get("iat")
    if isinstance(iat, bool) or not isinstance(iat, int | float):
        return 0
    return round(float(iat) * 1000)


def revocation_keys(prefix: str, principal: Principal) -> list[str]:
    """The keys whose values a token of `principal` must not be older than."""
    keys = [user_key(prefix, principal.user_id)]
    sid = principal.claims.get("sid")
    if isinstance(sid, str) and sid:
        keys.append(session_key(prefix, sid))
    return keys


def is_revoked(issued: int, not_before: Iterable[int | bytes | str | None]) -> bool:
    return any(value is not None and issued < int(value) for value in not_before)


class Revoker:
    """Auth's side: records revocations."""

    def __init__(self, redis: Redis, *, prefix: str, ttl_seconds: float) -> None:
        self._redis = redis
        self._prefix = prefix
        self._ttl_ms = max(1000, round(ttl_seconds * 1000))
        self._script = redis.register_script(_RAISE)

    async def _raise(self, key: str, at_ms: int) -> None:
        await self._script(keys=[key], args=[at_ms, self._ttl_ms])

    async def revoke_user(self, user_id: str, at_ms: int) -> None:
        await self._raise(user_key(self._prefix, user_id), at_ms)

    async def revoke_session(self, session_id: str, at_ms: int) -> None:
        await self._raise(session_key(self._prefix, session_id), at_ms)


# The one group-commit key: every check reads the same Redis.
_ALL = "all"
# Checks one read may carry (two keys each). Large, so that a Redis that hangs holds every
# check in flight for one timeout: read a hundred at a time, each read waiting out its
# timeout, the checks queued behind would wait several, and pile up faster than they go.
_CHECKS_PER_READ = 1000

NotBefore = list[bytes | str | None]


class RevocationCheck:
    """A service's side: is this principal's token still good? One MGET, bounded.

    Checks in flight together share that MGET (:class:`~taskmesh_common.batching.GroupCommit`):
    the first goes at once, and those that come while it is out go together next. Under load
    the writes a service answers at once cost Redis one round trip, not one each.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        timeout_seconds: float = 0.5,
        fail_open: bool = True,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._timeout = timeout_seconds
        self.fail_open = fail_open
        self._reads: GroupCommit[str, list[str], NotBefore] = GroupCommit(
            self._read_together, max_batch=_CHECKS_PER_READ
        )

    async def _read_together(self, _: str, batch: list[list[str]]) -> list[NotBefore]:
        """One MGET for every check of the batch; each gets the values of its own keys."""
        async with asyncio.timeout(self._timeout):
            values: NotBefore = await self._redis.mget([key for keys in batch for key in keys])
        out: list[NotBefore] = []
        start = 0
        for keys in batch:
            out.append(values[start : start + len(keys)])
            start += len(keys)
        return out

    async def _not_before(self, principal: Principal) -> NotBefore:
        async with asyncio.timeout(self._timeout):
            return await self._reads.submit(_ALL, revocation_keys(self._prefix, principal))

    async def ensure_live(self, principal: Principal, *, strict: bool = False) -> bool:
        """Raise `Revoked` for a revoked token. When Redis does not answer: refuse with 503
        if `strict` (admin decisions) or `fail_open` is off, else let it through (counted).
        Whether the token was checked (False: let through unchecked)."""
        try:
            values = await self._not_before(principal)
        except Exception as exc:
            kind = "admin" if strict else "write"
            if strict or not self.fail_open:
                logger.warning("revocation check failed; refused", extra={"error": str(exc)[:200]})
                raise DependencyUnavailable(
                    "Cannot check whether this token was revoked; retry shortly"
                ) from None
            REVOCATION_UNCHECKED.labels(kind).inc()
            logger.warning("revocation check failed; let through", extra={"error": str(exc)[:200]})
            return False
        if is_revoked(issued_ms(principal.claims), values):
            raise Revoked()
        return True
