"""The `deleted_users` collection: users whose `user.deleted` was applied, so that their late
task events are dropped instead of bringing statistics back."""

from __future__ import annotations

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

    async def contains(self, user_id: str) -> bool:
        return await self.collection.find_one({"_id": user_id}, {"_id": 1}) is not None
