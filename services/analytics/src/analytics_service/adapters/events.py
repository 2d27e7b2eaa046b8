"""The `events` collection: every event this service applied, `_id` = event id.

The service's own event store, the source a rebuild replays. Inserting by event id keeps each
event once however often it is delivered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from taskmesh_common.mongo import Document, insert_new

__all__ = ["EVENTS", "EVENT_INDEXES", "EventStore"]

EVENTS = "events"
USER_DELETED = "user.deleted"

EVENT_INDEXES = [
    # The rebuild's replay, in stored order, and its catch-up from a moment on.
    IndexModel([("stored_at", ASCENDING), ("_id", ASCENDING)]),
    # A user's deletion.
    IndexModel([("owner_id", ASCENDING)]),
]


class EventStore:
    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self.collection = collection

    async def record(self, owned: Sequence[tuple[str, Mapping[str, Any]]]) -> int:
        """Keep applied events, each with its user's id (one insert); how many were new
        (duplicates are skipped)."""
        now = datetime.now(UTC)
        documents = [
            {
                "_id": envelope["id"],
                "owner_id": owner_id,
                "type": envelope["type"],
                "envelope": dict(envelope),
                "stored_at": now,
            }
            for owner_id, envelope in owned
        ]
        return len(documents) - len(await insert_new(self.collection, documents))

    async def replay(
        self, since: datetime | None = None, *, batch_size: int = 500
    ) -> AsyncIterator[dict[str, Any]]:
        """Stored envelopes in the order they were stored."""
        query: dict[str, Any] = {} if since is None else {"stored_at": {"$gte": since}}
        cursor = self.collection.find(query, batch_size=batch_size).sort(
            [("stored_at", ASCENDING), ("_id", ASCENDING)]
        )
        async for document in cursor:
            yield dict(document["envelope"])

    async def forget_owner(self, owner_id: str) -> None:
        """Every stored event of the user but their `user.deleted` (it holds no personal
        data, and a rebuild needs it to know the user is gone)."""
        await self.collection.delete_many({"owner_id": owner_id, "type": {"$ne": USER_DELETED}})
