"""The `deleted_users` collection: users whose `user.deleted` was applied, so that their late
task events are dropped instead of bringing statistics back."""

from __future__ import annotations

from datetime import datetime

from pymongo.asynchronous.collection import AsyncCollection
from taskmesh_common.batching import GroupCommit
from taskmesh_common.mongo import Document

__all__ = ["DELETED_USERS", "DeletedUsers"]

DELETED_USERS = "deleted_users"


class DeletedUsers:
    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self.collection = collection
        # Checks that arrive while one is being read go together in the next read: every
        # check is still read after its caller's writes, with one `$in` for many users.
        self._checks: GroupCommit[str, str, bool] = GroupCommit(self._contain)

    async def mark(self, user_id: str, deleted_at: datetime) -> None:
        await self.collection.update_one(
            {"_id": user_id}, {"$setOnInsert": {"deleted_at": deleted_at}}, upsert=True
        )

    async def contains(self, user_id: str) -> bool:
        return await self._checks.submit(DELETED_USERS, user_id)

    async def _contain(self, _: str, user_ids: list[str]) -> list[bool]:
        query = {"_id": {"$in": sorted(set(user_ids))}}
        deleted = {doc["_id"] async for doc in self.collection.find(query, {"_id": 1})}
        return [user_id in deleted for user_id in user_ids]
