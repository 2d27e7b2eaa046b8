"""Owners whose account was deleted, remembered while a write of theirs could still land.

`user.deleted` marks the owner here before removing their tasks. A create whose token could
not be checked for revocation (Redis away) checks the mark after its insert: a create racing
the removal is either seen by the removal or sees the mark itself and undoes its task. A mark
outlives any access token of the owner (at most 15 minutes after the deletion), then expires.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from taskmesh_common.batching import GroupCommit
from taskmesh_common.mongo import Document

__all__ = ["MARK_LIFETIME", "REMOVED_OWNERS_COLLECTION", "RemovedOwners", "removed_owner_indexes"]

REMOVED_OWNERS_COLLECTION = "removed_owners"
MARK_LIFETIME = timedelta(days=1)


def removed_owner_indexes() -> list[IndexModel]:
    return [IndexModel([("expires_at", ASCENDING)], name="expiry", expireAfterSeconds=0)]


class RemovedOwners:
    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self.collection = collection
        # Creates arriving together share one read (a lone create still costs one).
        self._reads: GroupCommit[str, str, bool] = GroupCommit(self._contain)

    async def _contain(self, _key: str, owners: list[str]) -> Sequence[bool]:
        found = {
            doc["_id"]
            async for doc in self.collection.find({"_id": {"$in": sorted(set(owners))}}, {"_id": 1})
        }
        return [owner in found for owner in owners]

    async def mark(self, owner_id: str, now: datetime) -> None:
        await self.collection.update_one(
            {"_id": owner_id},
            {"$set": {"removed_at": now, "expires_at": now + MARK_LIFETIME}},
            upsert=True,
        )

    async def contains(self, owner_id: str) -> bool:
        return await self._reads.submit("owners", owner_id)

    async def close(self) -> None:
        await self._reads.close()
