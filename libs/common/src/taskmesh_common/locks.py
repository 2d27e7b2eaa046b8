"""One writer per document at a time, across replicas: ``async with locks.holding(key):``.

Why: FerretDB 1.24 (SQLite) applies ``update_one`` with a filter, ``find_one_and_update``,
``$inc`` and ``update_many`` as read-then-replace outside a transaction (FerretDB#3040).
Measured here: 20 racing ``update_one({_id, rev: 0}, {$set: {rev: 1}})`` all report a
modification, 9 of 50 ``find_one_and_update`` claimers win, 50 concurrent ``$inc`` add up
to 2, and a concurrent write can put a document's old state back. Only a unique ``_id``
insert and ``delete_one`` are atomic there, so a lock is a document ``{_id: key}``
inserted before the write and deleted after it; the guarded write then has nobody to race
with. Every writer of a document that may race must hold its lock, the outbox relay
included (``OutboxRelay(locks=...)``). On MongoDB the lock is redundant, and harmless.

A holder that dies leaves its lock behind; once older than ``stale_after`` it is taken
over: contenders delete it by the holder's timestamp, which only one of them can do.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError, PyMongoError

from taskmesh_common.mongo import insert_new

__all__ = ["DocumentLocks", "LockTimeout"]

_FIRST_DELAY = 0.005
_MAX_DELAY = 0.1


class LockTimeout(TimeoutError):
    """The lock on ``key`` stayed taken for the whole wait; the caller may retry later."""

    def __init__(self, key: str) -> None:
        super().__init__(f"{key} is being changed by another writer; retry shortly")
        self.key = key


class DocumentLocks:
    """Per-key locks kept in ``collection`` (empty at rest); see the module docstring.

    Contenders of the same process queue on a local asyncio lock first, so they wait on
    each other without polling the database. ``wait_seconds`` bounds the whole wait.
    """

    def __init__(
        self,
        collection: AsyncCollection[dict[str, Any]],
        *,
        stale_after: timedelta = timedelta(seconds=30),
        wait_seconds: float = 3.0,
    ) -> None:
        self.collection = collection
        self.stale_after = stale_after
        self.wait_seconds = wait_seconds
        self._local: dict[str, tuple[asyncio.Lock, int]] = {}

    async def acquire(self, key: str, *, deadline: float | None = None) -> str:
        """Take the lock on ``key``; returns the token that releases it.

        Raises :class:`LockTimeout` if it is still held at ``deadline`` (the event loop's
        clock; by default ``wait_seconds`` from now).
        """
        loop = asyncio.get_running_loop()
        if deadline is None:
            deadline = loop.time() + self.wait_seconds
        token = secrets.token_hex(8)
        delay = _FIRST_DELAY
        while True:
            now = datetime.now(UTC)
            try:
                await self.collection.insert_one({"_id": key, "at": now, "token": token})
            except DuplicateKeyError:
                pass
            else:
                return token
            holder = await self.collection.find_one({"_id": key})
            if holder is not None and holder["at"] <= now - self.stale_after:
                # The holder died mid-write: exactly one contender deletes its lock.
                await self.collection.delete_one({"_id": key, "at": holder["at"]})
                continue
            if loop.time() >= deadline:
                raise LockTimeout(key)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_DELAY)

    async def release(self, key: str, token: str) -> None:
        # Only our own lock: after a takeover it may be someone else's.
        await self.collection.delete_one({"_id": key, "token": token})

    @contextlib.asynccontextmanager
    async def holding(self, key: str) -> AsyncIterator[None]:
        """Hold the lock on ``key`` for the block; :class:`LockTimeout` if it never frees."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_seconds
        local, users = self._local.get(key, (asyncio.Lock(), 0))
        self._local[key] = (local, users + 1)
        try:
            try:
                async with asyncio.timeout_at(deadline):
                    await local.acquire()
            except TimeoutError:
                raise LockTimeout(key) from None
            try:
                token = await self.acquire(key, deadline=deadline)
                try:
                    yield
                finally:
                    with contextlib.suppress(PyMongoError):
                        # If this fails the lock goes stale and is taken over later.
                        await self.release(key, token)
            finally:
                local.release()
        finally:
            local, users = self._local[key]
            if users <= 1:
                del self._local[key]
            else:
                self._local[key] = (local, users - 1)

    @contextlib.asynccontextmanager
    async def holding_free(self, keys: Iterable[str]) -> AsyncIterator[set[str]]:
        """Hold, for the block, those of ``keys`` that nobody holds now; yields them.

        For background work that can leave a busy key for later (the outbox sweep): it
        never waits and never takes a stale lock over (waiting writers do that). Taking
        and giving back are one ``insert_many`` and one ``delete_many`` for all the keys,
        where :meth:`holding` costs two writes per key.
        """
        wanted = list(dict.fromkeys(keys))
        # Keys this process is writing (or queued for) are busy: skip them, no waiting.
        local: dict[str, asyncio.Lock] = {}
        for key in wanted:
            if key in self._local:
                continue
            lock = asyncio.Lock()
            await lock.acquire()  # a fresh lock: returns at once
            self._local[key] = (lock, 1)
            local[key] = lock
        token = secrets.token_hex(8)
        now = datetime.now(UTC)
        held: set[str] = set()
        try:
            if local:
                keys = list(local)
                documents = [{"_id": key, "at": now, "token": token} for key in keys]
                refused = await insert_new(self.collection, documents)
                held = {key for n, key in enumerate(keys) if n not in refused}
            yield held
        finally:
            try:
                if held:
                    with contextlib.suppress(PyMongoError):
                        # Ours only (token); if this fails the locks go stale, taken over later.
                        await self.collection.delete_many(
                            {"_id": {"$in": sorted(held)}, "token": token}
                        )
            finally:
                for key, lock in local.items():
                    lock.release()
                    entry = self._local.get(key)
                    if entry is not None and entry[0] is lock:
                        users = entry[1] - 1
                        if users <= 0:
                            del self._local[key]
                        else:
                            self._local[key] = (lock, users)
