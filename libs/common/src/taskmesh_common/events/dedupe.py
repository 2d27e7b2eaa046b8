"""Which events a consumer already applied: one document per event id, pruned by age.

FerretDB has no TTL indexes, so the consumer deletes old ids itself. An id is kept for
``retention`` (7 days by default): far longer than any redelivery or replay window.

A consumer asks about, and records, one event per message, with up to its prefetch of
messages in flight at once: lookups made while one is in flight go together (one
``find_one`` by ``_id`` each, concurrently: an ``$in`` would read the whole week of ids on
FerretDB), records in one ``insert_many`` (:class:`~taskmesh_common.batching.GroupCommit`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection

from taskmesh_common.batching import GroupCommit
from taskmesh_common.mongo import find_by_ids, insert_new

__all__ = ["DEFAULT_RETENTION", "ProcessedEvents"]

DEFAULT_RETENTION = timedelta(days=7)
_BATCH = 256


class ProcessedEvents:
    def __init__(
        self, collection: AsyncCollection[dict[str, Any]], retention: timedelta = DEFAULT_RETENTION
    ) -> None:
        self.collection = collection
        self.retention = retention
        self._lookups: GroupCommit[str, str, bool] = GroupCommit(self._seen_many, _BATCH)
        self._records: GroupCommit[str, dict[str, Any], None] = GroupCommit(
            self._record_many, _BATCH
        )

    async def ensure_indexes(self) -> None:
        await self.collection.create_indexes([IndexModel([("processed_at", ASCENDING)])])

    async def seen(self, event_id: str) -> bool:
        return await self._lookups.submit("", event_id)

    async def record(self, event_id: str, *, event_type: str, queue: str) -> None:
        document = {"_id": event_id, "type": event_type, "queue": queue}
        await self._records.submit("", document)

    async def _seen_many(self, _: str, ids: list[str]) -> list[bool]:
        # By _id, one each: the collection holds a week of ids, and FerretDB would read it
        # all for an `$in` (see `find_by_ids`).
        found = await find_by_ids(self.collection, ids, {"_id": 1})
        return [event_id in found for event_id in ids]

    async def _record_many(self, _: str, documents: list[dict[str, Any]]) -> list[None]:
        now = datetime.now(UTC)
        # A duplicate: another replica (or a redelivery) recorded the same id already.
        await insert_new(self.collection, [{**d, "processed_at": now} for d in documents])
        return [None] * len(documents)

    async def prune(self, now: datetime | None = None) -> int:
        """Forget ids older than the retention; returns how many were deleted."""
        cutoff = (now or datetime.now(UTC)) - self.retention
        result = await self.collection.delete_many({"processed_at": {"$lt": cutoff}})
        return result.deleted_count
