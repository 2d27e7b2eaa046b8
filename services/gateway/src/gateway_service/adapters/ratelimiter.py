"""Rate limits shared by every gateway replica: GCRA in one atomic Lua script on Redis.

The same script reads the caller's token revocation keys (taskmesh_common.security
.revocation), so checking a token costs no extra round trip.

The script reads the clock from Redis (`TIME`), so replicas with skewed clocks agree, and
checks and consumes in one step, so concurrent requests can never both take the last token.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Sequence

from redis.asyncio import BlockingConnectionPool, Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from gateway_service.domain.ratelimit import Decision, Rate
from gateway_service.metrics import RATELIMIT_BATCH_SIZE, RATELIMIT_DECISIONS, REDIS_FAILURES

__all__ = ["RateLimiter", "RedisUnavailable", "create_limiter_redis"]

logger = logging.getLogger("gateway.ratelimit")

# GCRA in integer microseconds (exact in Lua's doubles up to 2^53; now ≈ 1.8e15), for
# every request of one batch in turn, so two requests of one key in a batch see each other.
# Per request i, ARGV[3i-2]: its emission interval (µs per request, rounded up so a burst can
# never exceed the count); ARGV[3i-1]: its burst tolerance (µs) = emission * (count - 1);
# ARGV[3i]: n, how many revocation keys follow its rate key in KEYS. Returns, flat, {allowed,
# remaining, microseconds until reset (allowed) or retry (denied), the latest "not before"
# (epoch ms) among its revocation keys, 0 if none} per request: the revocation check shares
# the rate limit's round trip.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
local k = 1
for i = 1, #ARGV / 3 do
  local emission = tonumber(ARGV[3 * i - 2])
  local tolerance = tonumber(ARGV[3 * i - 1])
  local revocations = tonumber(ARGV[3 * i])
  local key = KEYS[k]
  local not_before = 0
  for j = 1, revocations do
    local value = tonumber(redis.call('GET', KEYS[k + j]) or '0') or 0
    if value > not_before then not_before = value end
  end
  k = k + 1 + revocations
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local ahead = tat - now
  if ahead > tolerance then
    out[#out + 1] = 0
    out[#out + 1] = 0
    out[#out + 1] = ahead - tolerance
  else
    local new_tat = tat + emission
    local used = new_tat - now
    redis.call('SET', key, string.format('%.0f', new_tat), 'PX', math.ceil(used / 1000) + 1)
    local remaining = math.floor((tolerance - used) / emission) + 1
    if remaining < 0 then remaining = 0 end
    out[#out + 1] = 1
    out[#out + 1] = remaining
    out[#out + 1] = used
  end
  out[#out + 1] = not_before
end
return out
"""


def _redis_down(exc: BaseException | None) -> bool:
    """Refused or reset somewhere in the chain (redis-py wraps the OSError); not a timeout."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, OSError) and not isinstance(exc, TimeoutError):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


class RedisUnavailable(Exception):
    """Redis did not answer the limiter in time (or is known to be away)."""


# How often the event-loop watcher ticks; a tick much later than due means the loop is busy.
_TICK_SECONDS = 0.02


def _hard_cap(timeout_seconds: float) -> float:
    return max(2.0, 4 * timeout_seconds)


def create_limiter_redis(url: str, timeout_seconds: float, max_connections: int = 8) -> Redis:
    # A small pool: a burst of requests shares a few warm connections (one script call is
    # microseconds in Redis) instead of opening hundreds at once, which costs far more:
    # measured here, 200 concurrent calls took ~40 ms on 8 connections, ~300 ms on 200.
    # No retries inside redis-py: the limiter's wait must stay within one bound.
    cap = _hard_cap(timeout_seconds)
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=cap,
        socket_timeout=cap,
        socket_connect_timeout=timeout_seconds,
        retry=Retry(NoBackoff(), 0),
        decode_responses=False,
    )
    return Redis(connection_pool=pool)


class _Batch:
    """The requests that asked for a decision in one turn of the event loop."""

    __slots__ = ("args", "keys", "waiters")

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.args: list[int] = []
        self.waiters: list[asyncio.Future[tuple[int, int, int, int]]] = []


def _fail_all(batch: _Batch, exc: BaseException) -> None:
    unavailable = RedisUnavailable(f"{type(exc).__name__}: {exc}")
    unavailable.__cause__ = exc
    for waiter in batch.waiters:
        if not waiter.done():
            waiter.set_exception(unavailable)


class RateLimiter:
    """GCRA limits in Redis with a bounded wait, one script call per turn of the event loop.

    Requests that ask in the same turn of the loop share one call (up to `max_batch`): under
    load many arrive together, and one call costs the gateway (and Redis) about what each of
    them cost alone. Each still gets its own decision, in order, atomically.

    The wait is `timeout_seconds`, stretched (up to a hard cap of 2 s) only while Redis
    keeps answering other calls or this process's event loop is visibly behind: then the
    delay is ours, not Redis's, and failing open would switch limiting off exactly under a
    burst (measured: 200 simultaneous requests in one process hold the loop for ~0.4 s).
    """

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        timeout_seconds: float,
        backoff_seconds: float,
        fail_open: bool,
        max_batch: int = 64,
    ) -> None:
        self._redis = redis
        self._script = redis.register_script(_GCRA)
        self._prefix = prefix
        self._timeout = timeout_seconds
        self._cap = _hard_cap(timeout_seconds)
        self._backoff = backoff_seconds
        self._max_batch = max_batch
        self.fail_open = fail_open
        self._skip_until = 0.0
        self._last_answer = 0.0
        self._tick = time.monotonic()
        self._busy_until = 0.0
        self._watcher: asyncio.Task[None] | None = None
        self._open: _Batch | None = None
        self._calls: set[asyncio.Task[None]] = set()

    async def _watch_loop(self) -> None:
        while True:
            due = time.monotonic() + _TICK_SECONDS
            await asyncio.sleep(_TICK_SECONDS)
            self._tick = time.monotonic()
            if self._tick - due > self._timeout / 4:
                # Woken late: the loop is congested, and likely stays so for a while.
                self._busy_until = self._tick + self._timeout

    def _loop_behind(self, now: float) -> bool:
        return now < self._busy_until or now - self._tick > _TICK_SECONDS + self._timeout / 4

    async def aclose(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        for call in list(self._calls):
            call.cancel()
        await self._redis.aclose()

    async def warm_up(self) -> None:
        """Load the script and open a connection before the first request needs them."""
        self._watcher = asyncio.create_task(self._watch_loop())
        try:
            # Start-up must not hang on a hung Redis either; the loop is idle here.
            async with asyncio.timeout(max(self._timeout, 0.5)):
                await self._redis.script_load(_GCRA)
            self._last_answer = time.monotonic()
        except Exception as exc:
            logger.warning("rate limiter warm-up failed", extra={"error": str(exc)[:200]})

    async def _bounded(self, call: Awaitable[list[int]]) -> list[int]:
        started = time.monotonic()
        task = asyncio.ensure_future(call)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self._timeout)
                if done:
                    result = task.result()
                    self._last_answer = time.monotonic()
                    return result
                now = time.monotonic()
                ours = now - self._last_answer < self._timeout or self._loop_behind(now)
                if not ours or now - started >= self._cap:
                    raise TimeoutError(f"redis gave no answer within {now - started:.3f}s")
        finally:
            task.cancel()

    async def acquire(self, policy: str, identity: str, rate: Rate) -> Decision:
        """Consume one request of `identity`'s quota; raises RedisUnavailable when Redis is away."""
        decision, _ = await self.acquire_and_read(policy, identity, rate)
        return decision

    async def acquire_and_read(
        self, policy: str, identity: str, rate: Rate, revocation_keys: Sequence[str] = ()
    ) -> tuple[Decision, int]:
        """`acquire`, and in the same round trip the latest value (epoch ms, 0 if none) of
        the full `revocation_keys`: the "not before" of the caller's token."""
        if time.monotonic() < self._skip_until:
            raise RedisUnavailable("redis marked unavailable after a recent failure")
        window_us = rate.window_seconds * 1_000_000
        emission = -(-window_us // rate.count)  # ceiling division
        tolerance = emission * (rate.count - 1)
        loop = asyncio.get_running_loop()
        batch = self._open
        if batch is None or len(batch.waiters) >= self._max_batch:
            batch = self._open = _Batch()
            # Sent once this turn of the loop is over: the requests that arrived with this one
            # have asked by then.
            loop.call_soon(self._send, batch)
        waiter: asyncio.Future[tuple[int, int, int, int]] = loop.create_future()
        batch.keys.append(f"{self._prefix}ratelimit:{policy}:{identity}")
        batch.keys += revocation_keys
        batch.args += (emission, tolerance, len(revocation_keys))
        batch.waiters.append(waiter)
        allowed, remaining, micros, not_before = await waiter
        decision = Decision(policy, rate, bool(allowed), int(remaining), int(micros) / 1_000_000)
        RATELIMIT_DECISIONS.labels(policy, "allowed" if decision.allowed else "denied").inc()
        return decision, int(not_before)

    def _send(self, batch: _Batch) -> None:
        if self._open is batch:
            self._open = None
        call = asyncio.create_task(self._call(batch))
        self._calls.add(call)
        call.add_done_callback(self._calls.discard)

    async def _call(self, batch: _Batch) -> None:
        RATELIMIT_BATCH_SIZE.observe(len(batch.waiters))
        try:
            flat = await self._bounded(self._script(keys=batch.keys, args=batch.args))
        except Exception as exc:  # any Redis trouble is the same decision: fail open or closed
            self._failed(exc)
            _fail_all(batch, exc)
            return
        except asyncio.CancelledError as exc:  # the gateway is stopping
            _fail_all(batch, exc)
            raise
        for i, waiter in enumerate(batch.waiters):
            # A waiter whose client went away meanwhile is cancelled; its token stays spent.
            if not waiter.done():
                waiter.set_result((flat[4 * i], flat[4 * i + 1], flat[4 * i + 2], flat[4 * i + 3]))

    def _failed(self, exc: Exception) -> None:
        if _redis_down(exc):
            # Redis is down, not just slow: stop paying even the connect attempt for a while.
            # A timeout does not do this, so one slow moment cannot switch limiting off.
            self._skip_until = time.monotonic() + self._backoff
        REDIS_FAILURES.inc()
        logger.warning(
            "rate limiter could not reach redis",
            extra={"error": f"{type(exc).__name__}: {exc}"[:200], "fail_open": self.fail_open},
        )
