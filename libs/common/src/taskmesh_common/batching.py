"""Group commit: calls that arrive while a write is in flight are written together next.

Many small writes to the MongoDB-protocol server cost one round trip each. When callers run
concurrently (a consumer's handlers of prefetched messages, say), :class:`GroupCommit` turns
N such writes into a few: the first call for a key starts a drain for that key at once (no
waiting for company, so a lone call costs nothing extra); calls for the same key that arrive
while a batch is being written queue up and go, together, in the next batch. Each caller gets its own item's
result, or the batch's error, only once its batch is done, so "acknowledge after the write"
still holds per item. Batches of one key never overlap (a key is one user, one collection:
whatever must be written in order); different keys drain concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["GroupCommit"]

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Queued(Generic[T, R]):
    item: T
    done: asyncio.Future[R]


@dataclass
class GroupCommit(Generic[K, T, R]):
    """``await submit(key, item)`` returns ``item``'s result once ``run(key, batch)`` wrote
    a batch holding it. ``run`` returns one result per item, in order."""

    run: Callable[[K, list[T]], Awaitable[Sequence[R]]]
    max_batch: int = 100
    _queues: dict[K, list[_Queued[T, R]]] = field(default_factory=dict)
    _drains: set[asyncio.Task[None]] = field(default_factory=set)

    async def submit(self, key: K, item: T) -> R:
        queued: _Queued[T, R] = _Queued(item, asyncio.get_running_loop().create_future())
        queue = self._queues.get(key)
        if queue is not None:
            queue.append(queued)  # a drain runs for this key: the next batch takes it
        else:
            self._queues[key] = [queued]
            drain = asyncio.create_task(self._drain(key), name=f"group-commit-{key}")
            self._drains.add(drain)
            drain.add_done_callback(self._drains.discard)
        # Shielded: a caller that gives up (a consumer stopping) does not cancel the batch.
        return await asyncio.shield(queued.done)

    async def _drain(self, key: K) -> None:
        queue = self._queues[key]
        batch: list[_Queued[T, R]] = []
        try:
            while queue:
                batch = queue[: self.max_batch]
                del queue[: self.max_batch]
                try:
                    results = await self.run(key, [queued.item for queued in batch])
                    if len(results) != len(batch):
                        raise RuntimeError(f"{len(results)} results for {len(batch)} items")
                except Exception as exc:
                    _fail(batch, exc)
                else:
                    for queued, result in zip(batch, results, strict=True):
                        if not queued.done.done():
                            queued.done.set_result(result)
                batch = []
        finally:
            # No await between the loop's last check and here: nothing joins a finished queue.
            del self._queues[key]
            # A cancelled drain: what it held or still queued fails, so it is retried.
            _fail(batch + queue, RuntimeError("batch abandoned"))

    async def close(self) -> None:
        """Cancel the drains; their callers get an error (and retry, where they do)."""
        for drain in list(self._drains):
            drain.cancel()
            with contextlib.suppress(BaseException):
                await drain


def _fail(batch: list[_Queued[T, R]], error: Exception) -> None:
    for queued in batch:
        if queued.done.done():
            continue
        queued.done.set_exception(error)
        # Marked retrieved, so a caller that gave up leaves no "never retrieved" warning.
        queued.done.exception()
