"""Which events a consumer already applied: one document per event id, expired by a TTL index.

An id is kept for ``retention`` (7 days by default): far longer than any redelivery or replay
window. The server deletes older ones itself (the TTL index on ``processed_at``; MongoDB and
DocumentDB check about once a minute), so nothing here prunes.

A consumer asks about, and records, one event per message, with up to its prefetch of
messages in flight at once: lookups made while one is in flight go together as one
``find({_id: {$in: ids}})``, records as one ``insert_many``
(:class:`~taskmesh_common.batching.GroupCommit`).
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

    def indexes(self) -> list[IndexModel]:
        """The TTL index that expires ids ``retention`` after they were recorded."""
        return [
            IndexModel(
                [("processed_at", ASCENDING)],
                name="processed_at_ttl",
                expireAfterSeconds=int(self.retention.total_seconds()),
            )
        ]

    async def ensure_indexes(self) -> None:
        """Create the TTL index; an index on ``processed_at`` that expires nothing, or after
        another retention, is dropped first (the server refuses two on the same key)."""
        [ttl] = self.indexes()
        seconds = ttl.document["expireAfterSeconds"]
        async for index in await self.collection.list_indexes():
            if dict(index["key"]) == {"processed_at": ASCENDING} and (
                index.get("expireAfterSeconds") != seconds
            ):
                await self.collection.drop_index(index["name"])
        await self.collection.create_indexes([ttl])

    async def seen(self, event_id: str) -> bool:
        return await self._lookups.submit("", event_id)

    async def record(self, event_id: str, *, event_type: str, queue: str) -> None:
        document = {"_id": event_id, "type": event_type, "queue": queue}
        await self._records.submit("", document)

    async def _seen_many(self, _: str, ids: list[str]) -> list[bool]:
        found = await find_by_ids(self.collection, ids, {"_id": 1})
        return [event_id in found for event_id in ids]

    async def _record_many(self, _: str, documents: list[dict[str, Any]]) -> list[None]:
        now = datetime.now(UTC)
        # A duplicate: another replica (or a redelivery) recorded the same id already.
        await insert_new(self.collection, [{**d, "processed_at": now} for d in documents])
        return [None] * len(documents)
