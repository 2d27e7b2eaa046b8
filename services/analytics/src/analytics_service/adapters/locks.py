"""Per-user mutual exclusion across replicas, from the one atomic write FerretDB has.

Measured on FerretDB 1.24 (SQLite): conditional updates are not atomic under concurrency.
20 concurrent `update_one({_id, rev: 0}, {$set: {rev: 1}})` all report a modification;
`find_one_and_update` lets 9 of 50 claimers win; version-guarded `replace_one`s racing on
one task ended on an older version in 8 of 30 trials; 50 concurrent `$inc`s add up to 2.
Inserting a duplicate `_id`, however, is always refused. So every write to a user's
projections happens while holding that user's lock: a document inserted with `_id` =
user id, deleted on release, taken over once its lease has expired.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError
from taskmesh_common.mongo import Document

__all__ = ["LockTimeout", "OwnerLocks"]


class LockTimeout(TimeoutError):
    """The user's lock stayed taken; the event is retried later by the consumer."""


class OwnerLocks:
    """`async with locks.hold(user_id):` — one holder per user across every replica.

    A local asyncio lock queues this process's own contenders first, so they wait on each
    other without polling the database. The lease bounds how long a crashed holder blocks
    the user; a handler runs for milliseconds, far below it.
    """

    def __init__(
        self,
        collection: AsyncCollection[Document],
        *,
        lease_seconds: float = 30.0,
        wait_seconds: float = 10.0,
    ) -> None:
        self.collection = collection
        self.lease = timedelta(seconds=lease_seconds)
        self.wait_seconds = wait_seconds
        self._local: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, owner_id: str) -> AsyncIterator[None]:
        lock, users = self._local.get(owner_id, (asyncio.Lock(), 0))
        self._local[owner_id] = (lock, users + 1)
        try:
            async with lock:
                token = await self._acquire(owner_id)
                try:
                    yield
                finally:
                    await self.collection.delete_one({"_id": owner_id, "holder": token})
        finally:
            lock, users = self._local[owner_id]
            if users <= 1:
                del self._local[owner_id]
            else:
                self._local[owner_id] = (lock, users - 1)

    async def _acquire(self, owner_id: str) -> str:
        token = secrets.token_hex(8)
        deadline = time.monotonic() + self.wait_seconds
        delay = 0.005
        while True:
            now = datetime.now(UTC)
            try:
                await self.collection.insert_one(
                    {"_id": owner_id, "holder": token, "expires_at": now + self.lease}
                )
            except DuplicateKeyError:
                # A holder that died leaves its lease behind; take it over once expired.
                await self.collection.delete_one({"_id": owner_id, "expires_at": {"$lt": now}})
            else:
                return token
            if time.monotonic() > deadline:
                raise LockTimeout(f"statistics of user {owner_id} stayed locked")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)
