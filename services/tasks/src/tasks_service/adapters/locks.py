"""One writer per task document at a time, enforced with the one atomic test-and-set that
FerretDB 1.24 (SQLite) really has: a unique `_id` insert.

Measured here: on FerretDB 1.24/SQLite `update_one({"_id": x, "version": 1}, ...)` and
`find_one_and_update` are *not* atomic compare-and-set (of 10 racing writers several
match; even `$inc` loses increments): the handler reads the document and writes the
whole of it back without a transaction (FerretDB/FerretDB#3040). Inserting a duplicate
`_id` and `delete_one` are atomic. So a writer first inserts the lock `{_id: <task id>}`
into `task_write_locks`; the conditional update that follows has no other API writer to
race with, and the version check in its filter is then exact. The lock is deleted right
after the write, so the collection is empty at rest.

Every writer of a task document takes it: the API (repository.py), the user.deleted
consumer, and the outbox relay, whose pull of published entries goes through
`relay_view.py`. Without that, a relay write landing over an API write on FerretDB put the
old state back and lost the change together with its event (seen in the event tests).

A writer that dies while holding the lock would block the task; a lock older than
`stale_after` is taken over (deleting it is atomic too, so one contender wins it). On
MongoDB the lock is redundant with the conditional update, and harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError, PyMongoError
from taskmesh_common.mongo import Document

from tasks_service.domain.errors import TaskBusy
from tasks_service.domain.model import utcnow

__all__ = ["LOCKS_COLLECTION", "WriteLocks"]

LOCKS_COLLECTION = "task_write_locks"


class WriteLocks:
    def __init__(
        self,
        collection: AsyncCollection[Document],
        *,
        stale_after: timedelta = timedelta(seconds=30),
        wait_seconds: float = 3.0,
    ) -> None:
        self.collection = collection
        self.stale_after = stale_after
        self.wait_seconds = wait_seconds

    async def acquire(self, task_id: str) -> datetime:
        """Take the task's lock, waiting a little for the holder; TaskBusy if it never frees."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_seconds
        delay = 0.005
        while True:
            now = utcnow()
            if await self._insert(task_id, now):
                return now
            holder = await self.collection.find_one({"_id": task_id})
            if holder is not None and holder["at"] <= now - self.stale_after:
                # The holder died mid-write; exactly one contender deletes its lock.
                await self.collection.delete_one({"_id": task_id, "at": holder["at"]})
                continue
            if loop.time() >= deadline:
                raise TaskBusy(task_id)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)

    async def _insert(self, task_id: str, now: datetime) -> bool:
        try:
            await self.collection.insert_one({"_id": task_id, "at": now})
        except DuplicateKeyError:
            return False
        return True

    async def release(self, task_id: str, acquired_at: datetime) -> None:
        # Only our own lock: after a takeover the lock may be someone else's.
        await self.collection.delete_one({"_id": task_id, "at": acquired_at})

    @contextlib.asynccontextmanager
    async def holding(self, task_id: str) -> AsyncIterator[None]:
        acquired_at = await self.acquire(task_id)
        try:
            yield
        finally:
            with contextlib.suppress(PyMongoError):
                # If this fails the lock goes stale and is taken over later.
                await self.release(task_id, acquired_at)
