"""Which events a consumer already applied: one document per event id, pruned by age.

FerretDB has no TTL indexes, so the consumer deletes old ids itself. An id is kept for
``retention`` (7 days by default): far longer than any redelivery or replay window.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

__all__ = ["DEFAULT_RETENTION", "ProcessedEvents"]

DEFAULT_RETENTION = timedelta(days=7)


class ProcessedEvents:
    def __init__(
        self, collection: AsyncCollection[dict[str, Any]], retention: timedelta = DEFAULT_RETENTION
    ) -> None:
        self.collection = collection
        self.retention = retention

    async def ensure_indexes(self) -> None:
        await self.collection.create_indexes([IndexModel([("processed_at", ASCENDING)])])

    async def seen(self, event_id: str) -> bool:
        return await self.collection.find_one({"_id": event_id}, {"_id": 1}) is not None

    async def record(self, event_id: str, *, event_type: str, queue: str) -> None:
        try:
            await self.collection.insert_one(
                {
                    "_id": event_id,
                    "type": event_type,
                    "queue": queue,
                    "processed_at": datetime.now(UTC),
                }
            )
        except DuplicateKeyError:
            pass  # another replica applied the same delivery at the same time

    async def prune(self, now: datetime | None = None) -> int:
        """Forget ids older than the retention; returns how many were deleted."""
        cutoff = (now or datetime.now(UTC)) - self.retention
        result = await self.collection.delete_many({"processed_at": {"$lt": cutoff}})
        return result.deleted_count
