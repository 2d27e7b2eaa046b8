"""Failed-login counters in Redis, shared by every auth replica.

Guesses are counted per (account, client address): an attacker exhausting their allowance on
an account locks out only themselves, and the owner signs in from their own address. Two
wider counters bound the rest: one address across all accounts (spraying), and one account
across all addresses (a ceiling well above what one address may try, so only many addresses
together reach it; the OWASP Authentication Cheat Sheet's trade-off between lockout and
denial of service).

One Lua script checks and counts an attempt atomically (read-then-increment from Python
would let a parallel burst through). Attempts are counted before the password is checked,
so a burst cannot race past the limit; a successful login gives its attempt back.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

__all__ = ["AttemptVerdict", "LoginLimiter"]

logger = logging.getLogger("auth.login_limiter")

# KEYS[1] (account, client) counter, KEYS[2] client counter (all accounts), KEYS[3] account
# counter (all clients); ARGV[1..3] their limits, ARGV[4] the window in seconds.
# Returns {retry_after (0 = allowed), attempts by this client on this account so far}.
_ATTEMPT = """
local function over(key, limit)
  local count = tonumber(redis.call('GET', key) or '0')
  if count >= limit then
    local ttl = redis.call('TTL', key)
    if ttl < 1 then
      redis.call('EXPIRE', key, ARGV[4])
      ttl = tonumber(ARGV[4])
    end
    return ttl
  end
  return 0
end
for i, key in ipairs(KEYS) do
  local wait = over(key, tonumber(ARGV[i]))
  if wait > 0 then return {wait, 0} end
end
local attempts = 0
for i, key in ipairs(KEYS) do
  local count = redis.call('INCR', key)
  if count == 1 then redis.call('EXPIRE', key, ARGV[4]) end
  if i == 1 then attempts = count end
end
return {0, attempts}
"""

# A successful login: this client starts afresh on this account; the other counters get
# this attempt back. The account's ceiling is not cleared: the owner signing in must not
# hand the guessers elsewhere a fresh allowance.
_SUCCEEDED = """
redis.call('DEL', KEYS[1])
for i = 2, #KEYS do
  local count = tonumber(redis.call('GET', KEYS[i]) or '0')
  if count > 0 then redis.call('DECR', KEYS[i]) end
end
return 1
"""

# An attempt refused before its password was checked (auth too busy): give it back.
_REFUND = """
for _, key in ipairs(KEYS) do
  local count = tonumber(redis.call('GET', key) or '0')
  if count > 0 then redis.call('DECR', key) end
end
return 1
"""


@dataclass(frozen=True)
class AttemptVerdict:
    retry_after: int  # seconds to wait; 0 means the attempt may go ahead
    attempts: int  # this client's attempts on this account in the window, this one included


class LoginLimiter:
    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        max_failures: int,
        max_failures_per_client: int,
        max_failures_per_account: int,
        window_seconds: int,
    ) -> None:
        self.redis = redis
        self.prefix = f"{prefix}auth:login:"
        self._limits = [max_failures, max_failures_per_client, max_failures_per_account]
        self.window_seconds = window_seconds
        self._attempt = redis.register_script(_ATTEMPT)
        self._succeeded = redis.register_script(_SUCCEEDED)
        self._refund = redis.register_script(_REFUND)

    def _keys(self, email: str, client: str) -> list[str]:
        # Hashed: Redis keys should not hold email addresses.
        account = hashlib.sha256(email.encode()).hexdigest()[:32]
        return [
            f"{self.prefix}pair:{account}:{client}",
            f"{self.prefix}client:{client}",
            f"{self.prefix}acct:{account}",
        ]

    async def attempt(self, email: str, client: str) -> AttemptVerdict:
        """Count a login attempt, or say how long to wait when the limit is reached.

        With Redis unreachable the attempt goes ahead (fail open, logged): logins keep
        working, and Argon2's cost plus the gateway's limits still slow an attacker.
        """
        try:
            wait, attempts = await self._attempt(
                keys=self._keys(email, client),
                args=[*self._limits, self.window_seconds],
            )
        except RedisError as exc:
            logger.warning("login limiter unavailable; allowing", extra={"error": str(exc)})
            return AttemptVerdict(0, 0)
        return AttemptVerdict(int(wait), int(attempts))

    async def succeeded(self, email: str, client: str) -> None:
        try:
            await self._succeeded(keys=self._keys(email, client), args=[])
        except RedisError as exc:
            logger.warning("login limiter unavailable", extra={"error": str(exc)})

    async def refund(self, email: str, client: str) -> None:
        """Give back an attempt whose password was never checked; best effort."""
        try:
            await self._refund(keys=self._keys(email, client))
        except RedisError as exc:
            logger.warning("login limiter unavailable; attempt kept", extra={"error": str(exc)})
