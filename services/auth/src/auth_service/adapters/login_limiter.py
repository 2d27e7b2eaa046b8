"""Failed-login counters in Redis, shared by every auth replica.

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

# KEYS[1] account counter, KEYS[2] client counter;
# ARGV[1] account limit, ARGV[2] client limit, ARGV[3] window in seconds.
# Returns {retry_after (0 = allowed), attempts on the account so far}.
_ATTEMPT = """
local function over(key, limit)
  local count = tonumber(redis.call('GET', key) or '0')
  if count >= limit then
    local ttl = redis.call('TTL', key)
    if ttl < 1 then
      redis.call('EXPIRE', key, ARGV[3])
      ttl = tonumber(ARGV[3])
    end
    return ttl
  end
  return 0
end
local wait = over(KEYS[1], tonumber(ARGV[1]))
if wait == 0 then wait = over(KEYS[2], tonumber(ARGV[2])) end
if wait > 0 then return {wait, 0} end
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
if redis.call('INCR', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], ARGV[3]) end
return {0, count}
"""

# A successful login: the account starts afresh, the client gets its attempt back.
_SUCCEEDED = """
redis.call('DEL', KEYS[1])
local count = tonumber(redis.call('GET', KEYS[2]) or '0')
if count > 0 then redis.call('DECR', KEYS[2]) end
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
    attempts: int  # attempts on this account within the window, this one included


class LoginLimiter:
    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        max_failures: int,
        max_failures_per_client: int,
        window_seconds: int,
    ) -> None:
        self.redis = redis
        self.prefix = f"{prefix}auth:login:"
        self.max_failures = max_failures
        self.max_failures_per_client = max_failures_per_client
        self.window_seconds = window_seconds
        self._attempt = redis.register_script(_ATTEMPT)
        self._succeeded = redis.register_script(_SUCCEEDED)
        self._refund = redis.register_script(_REFUND)

    def _keys(self, email: str, client: str) -> list[str]:
        # Hashed: Redis keys should not hold email addresses.
        account = hashlib.sha256(email.encode()).hexdigest()[:32]
        return [f"{self.prefix}acct:{account}", f"{self.prefix}client:{client}"]

    async def attempt(self, email: str, client: str) -> AttemptVerdict:
        """Count a login attempt, or say how long to wait when the limit is reached.

        With Redis unreachable the attempt goes ahead (fail open, logged): logins keep
        working, and Argon2's cost plus the gateway's limits still slow an attacker.
        """
        try:
            wait, attempts = await self._attempt(
                keys=self._keys(email, client),
                args=[self.max_failures, self.max_failures_per_client, self.window_seconds],
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
