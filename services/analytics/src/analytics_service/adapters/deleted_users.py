"""The `deleted_users` collection: users whose `user.deleted` was applied, so that their late
task events are dropped instead of bringing statistics back."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pymongo.asynchronous.collection import AsyncCollection
from taskmesh_common.mongo import Document

__all__ = ["DELETED_USERS", "DeletedUsers"]

DELETED_USERS = "deleted_users"


class DeletedUsers:
    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self.collection = collection

    async def mark(self, user_id: str, deleted_at: datetime) -> None:
        await self.collection.update_one(
            {"_id": user_id}, {"$setOnInsert": {"deleted_at": deleted_at}}, upsert=True
        )

    async def among(self, user_ids: Sequence[str]) -> list[str]:
        """Those of ``user_ids`` that were deleted (one read)."""
        query = {"_id": {"$in": sorted(set(user_ids))}}
        deleted = {doc["_id"] async for doc in self.collection.find(query, {"_id": 1})}
        return [user_id for user_id in user_ids if user_id in deleted]
