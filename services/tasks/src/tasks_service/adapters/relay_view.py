"""The outbox relay's view of the tasks database: its writes to task documents take the
same per-task lock as the API's (see locks.py).

`OutboxRelay` (libs/common) pulls published entries out of the documents it read with
`$pullAll`, in one `update_many` per batch. On FerretDB/SQLite that is a read-modify-write
of each document outside any transaction, so it can land over a concurrent API write and
put the old state back, losing the change *and* its event (seen in this service's event
tests: a PATCH answered 200, then vanished with its task.completed). This view turns each
multi-document update into one locked `update_one` per document, and locks single-document
updates too. Reads and deletes pass straight through (a delete cannot resurrect old state).

The lasting fix is a per-document write hook in `OutboxRelay` itself, or atomic updates
in the database (MongoDB; FerretDB on PostgreSQL to be measured).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from taskmesh_common.mongo import Document

from tasks_service.adapters.locks import WriteLocks

__all__ = ["LockedCollection", "LockedDatabase"]

# Locks taken at once by one multi-document update; each is held for one write only.
_PARALLEL_LOCKS = 16


class LockedCollection:
    def __init__(self, inner: AsyncCollection[Document], locks: WriteLocks) -> None:
        self._inner = inner
        self._locks = locks
        self._parallel = asyncio.Semaphore(_PARALLEL_LOCKS)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def update_one(
        self, filter: Mapping[str, Any], update: Any, *args: Any, **kwargs: Any
    ) -> Any:
        async with self._locks.holding(str(filter["_id"])):
            return await self._inner.update_one(filter, update, *args, **kwargs)

    async def find_one_and_update(
        self, filter: Mapping[str, Any], update: Any, *args: Any, **kwargs: Any
    ) -> Any:
        async with self._locks.holding(str(filter["_id"])):
            return await self._inner.find_one_and_update(filter, update, *args, **kwargs)

    async def update_many(self, filter: Mapping[str, Any], update: Any) -> int:
        """The same update, one locked document at a time; returns how many matched."""
        ids = [doc["_id"] async for doc in self._inner.find(filter, {"_id": 1})]

        async def one(doc_id: Any) -> int:
            async with self._parallel, self._locks.holding(str(doc_id)):
                result = await self._inner.update_one({**filter, "_id": doc_id}, update)
                return result.matched_count

        return sum(await asyncio.gather(*(one(i) for i in ids)))


class LockedDatabase:
    """Hands out `LockedCollection`s; everything else is the wrapped database."""

    def __init__(
        self, inner: AsyncDatabase[Document], locks: WriteLocks, *, locked: frozenset[str]
    ) -> None:
        self._inner = inner
        self._locks = locks
        self._locked = locked

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __getitem__(self, name: str) -> Any:
        # Only task documents are shared with the API; the relay's own lease collection
        # is written with unique inserts and needs no lock.
        if name in self._locked:
            return LockedCollection(self._inner[name], self._locks)
        return self._inner[name]
