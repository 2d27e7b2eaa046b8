"""Idempotency keys of task creation, one document each, expired by a TTL index.

A record is claimed (unique insert on ``_id``) before its task is inserted and names the
task id the key stands for, so any replica that sees the key again finds the same task.
``task_deleted`` is set before that task is tombstoned: a record whose task is absent and
not marked was claimed by a request that has not inserted its task (yet).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError
from taskmesh_common.mongo import Document

__all__ = ["KEYS_COLLECTION", "IdempotencyKeys", "IdempotencyRecord", "key_indexes"]

KEYS_COLLECTION = "task_idempotency_keys"


def key_indexes() -> list[IndexModel]:
    return [
        # The server deletes a record once `expires_at` has passed (within about a minute).
        IndexModel([("expires_at", ASCENDING)], name="expiry", expireAfterSeconds=0),
        IndexModel([("task_id", ASCENDING)], name="task"),
        IndexModel([("owner_id", ASCENDING)], name="owner"),
    ]


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    task_id: str
    request_hash: str
    task_deleted: bool


def _ref(owner_id: str, key: str) -> str:
    # Hashed: fixed size, no separator ambiguity, and the client's key is not stored as is.
    return hashlib.sha256(f"{owner_id}\x00{key}".encode()).hexdigest()


class IdempotencyKeys:
    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self.collection = collection

    async def claim(
        self,
        owner_id: str,
        key: str,
        *,
        task_id: str,
        request_hash: str,
        expires_at: datetime,
    ) -> IdempotencyRecord | None:
        """None when this call took the key for `task_id`; else the record that holds it."""
        ref = _ref(owner_id, key)
        while True:
            try:
                await self.collection.insert_one(
                    {
                        "_id": ref,
                        "owner_id": owner_id,
                        "task_id": task_id,
                        "request_hash": request_hash,
                        "expires_at": expires_at,
                    }
                )
            except DuplicateKeyError:
                doc = await self.collection.find_one({"_id": ref})
                if doc is not None:  # else it expired in between: claim it again
                    return IdempotencyRecord(
                        task_id=doc["task_id"],
                        request_hash=doc["request_hash"],
                        task_deleted=doc.get("task_deleted") is True,
                    )
            else:
                return None

    async def task_deleting(self, task_id: str, owner_id: str) -> None:
        """Mark the key of a task about to be deleted (before the delete, so no crash between
        the two can leave a purged task's key looking unused)."""
        await self.collection.update_many(
            {"task_id": task_id, "owner_id": owner_id}, {"$set": {"task_deleted": True}}
        )

    async def owner_deleting(self, owner_id: str) -> None:
        """`task_deleting` for every task of a user being removed."""
        await self.collection.update_many({"owner_id": owner_id}, {"$set": {"task_deleted": True}})
