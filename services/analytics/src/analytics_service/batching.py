"""Group commit per user: events of one user that arrive together are written together.

The consumer runs a handler per delivered message concurrently (up to its prefetch), so
several events of the same user are often in flight at once. Instead of each taking the
user's lock and writing on its own, the first one starts a drain task for that user and
every later one joins its queue; the drain applies what has queued in one batch (one lock,
one statistics read and write, one insert of the stored events), then the next batch.
Each caller returns only once its own event is written (or raises the batch's error), so
the consumer still acks only after the write, and a failure sends every event of the batch
back for a retry, which is harmless: applying an event is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["UserBatches"]

T = TypeVar("T")


@dataclass
class _Queued(Generic[T]):
    item: T
    done: asyncio.Future[None]


@dataclass
class UserBatches(Generic[T]):
    """`await submit(key, item)` returns once `apply(key, batch)` wrote a batch holding it."""

    apply: Callable[[str, list[T]], Awaitable[None]]
    max_batch: int = 100
    _queues: dict[str, list[_Queued[T]]] = field(default_factory=dict)
    _drains: set[asyncio.Task[None]] = field(default_factory=set)

    async def submit(self, key: str, item: T) -> None:
        queued = _Queued(item, asyncio.get_running_loop().create_future())
        queue = self._queues.get(key)
        if queue is not None:
            # A drain is running for this user: it takes this event with its next batch.
            queue.append(queued)
        else:
            self._queues[key] = [queued]
            drain = asyncio.create_task(self._drain(key), name=f"analytics-batch-{key}")
            self._drains.add(drain)
            drain.add_done_callback(self._drains.discard)
        # Shielded: a caller that gives up (consumer stopping) does not cancel the batch.
        await asyncio.shield(queued.done)

    async def _drain(self, key: str) -> None:
        queue = self._queues[key]
        batch: list[_Queued[T]] = []
        try:
            while queue:
                batch = queue[: self.max_batch]
                del queue[: self.max_batch]
                try:
                    await self.apply(key, [queued.item for queued in batch])
                except Exception as exc:
                    _settle(batch, exc)
                else:
                    _settle(batch, None)
                batch = []
        finally:
            del self._queues[key]
            # A cancelled drain: what it held or still queued fails, so it is retried.
            _settle(batch + queue, RuntimeError("analytics batch abandoned"))

    async def close(self) -> None:
        for drain in list(self._drains):
            drain.cancel()
            with contextlib.suppress(BaseException):
                await drain


def _settle(batch: list[_Queued[T]], error: Exception | None) -> None:
    for queued in batch:
        if queued.done.done():
            continue
        if error is None:
            queued.done.set_result(None)
        else:
            queued.done.set_exception(error)
            # Marked retrieved, so a caller that gave up leaves no "never retrieved" warning.
            queued.done.exception()
