"""Argon2 off the event loop, a few at a time, with a bounded queue in front."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import TypeVar

from auth_service.domain.errors import HashingBusy
from auth_service.domain.passwords import Passwords

__all__ = ["Hashing"]

T = TypeVar("T")
# Weight of each finished hash in the running estimate of a hash's wall time.
_EWMA_WEIGHT = 0.2


class Hashing:
    """Each Argon2 call takes tens of milliseconds and its memory cost in RAM: run it in a
    thread so the loop keeps serving, and bound the concurrency so a burst cannot exhaust RAM.

    Admission control: at most `concurrency` hashes run and a bounded number wait. A request
    past that is refused at once with `HashingBusy` (503 with Retry-After) instead of queueing
    into the gateway's timeout. The bound is `queue_limit` when set, otherwise what the slots
    clear in `queue_seconds` at the observed hash rate. The hash time starts at the one measured
    when `Passwords` is built (start-up, before any request) and follows the wall time of the
    hashes served, so it includes the contention of a busy machine.
    """

    def __init__(
        self,
        passwords: Passwords,
        concurrency: int,
        *,
        queue_limit: int | None = None,
        queue_seconds: float = 1.0,
    ) -> None:
        self.passwords = passwords
        self.concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self._fixed_limit = queue_limit
        self._queue_seconds = queue_seconds
        self._hash_seconds = max(passwords.measured_seconds, 1e-3)
        self._running = 0
        self._waiting = 0

    @property
    def queue_limit(self) -> int:
        """How many may wait for a slot; the rest are refused."""
        if self._fixed_limit is not None:
            return self._fixed_limit
        return max(1, math.floor(self._queue_seconds * self._rate()))

    def _rate(self) -> float:
        """Hashes per second the slots clear."""
        return self.concurrency / self._hash_seconds

    def retry_after(self) -> int:
        """Seconds until the queue ahead of a new request has likely cleared; at least 1."""
        return max(1, math.ceil((self._waiting + self._running) / self._rate()))

    async def hash(self, password: str) -> str:
        return await self._run(self.passwords.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        return await self._run(self.passwords.verify, password_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        return self.passwords.needs_rehash(password_hash)

    def refuse_if_full(self) -> None:
        """Raise `HashingBusy` now if a hash asked for now would be refused: callers check
        before any other work (a database read, the login limiter), so a refusal costs
        nothing and answers at once."""
        if self._running + self._waiting >= self.concurrency + self.queue_limit:
            raise HashingBusy(self.retry_after())

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        self.refuse_if_full()
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        self._running += 1
        try:
            loop = asyncio.get_running_loop()
            began = loop.time()
            result = await asyncio.to_thread(fn, *args)
            elapsed = loop.time() - began
            self._hash_seconds += _EWMA_WEIGHT * (max(elapsed, 1e-3) - self._hash_seconds)
            return result
        finally:
            self._running -= 1
            self._slots.release()
