"""Refresh tokens in MongoDB: only their SHA-256, grouped in families for reuse detection.

Spending a token is atomic through a unique index, not a conditional update: each token
document names its `parent` (the token it replaced, or `root:<family>` after a login), and
`parent` is unique, so of two concurrent uses of one token only one successor can be
inserted. (FerretDB 1.24 evaluates find_one_and_update's filter and its write separately:
two concurrent calls can both match; a unique index is enforced by the storage itself.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError
from taskmesh_common.mongo import Document

__all__ = ["REFRESH_TOKEN_INDEXES", "RefreshTokenRecord", "RefreshTokenRepository"]

REFRESH_TOKEN_INDEXES = [
    IndexModel([("parent", ASCENDING)], unique=True, name="parent_unique"),
    IndexModel([("family_id", ASCENDING)], name="family"),
    IndexModel([("user_id", ASCENDING)], name="user"),
    # No TTL index on FerretDB: the cleanup task deletes by this field.
    IndexModel([("expires_at", ASCENDING)], name="expiry"),
]


@dataclass(frozen=True)
class RefreshTokenRecord:
    token_hash: str
    family_id: str
    user_id: str
    expires_at: datetime
    spent: bool
    revoked: bool


def _record(doc: dict[str, Any]) -> RefreshTokenRecord:
    return RefreshTokenRecord(
        token_hash=doc["_id"],
        family_id=doc["family_id"],
        user_id=doc["user_id"],
        expires_at=doc["expires_at"],
        spent=doc.get("spent_at") is not None,
        revoked=bool(doc.get("revoked", False)),
    )


class RefreshTokenRepository:
    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self.collection = collection

    async def add(
        self,
        token_hash: str,
        *,
        parent: str | None,
        family_id: str,
        user_id: str,
        now: datetime,
        expires_at: datetime,
    ) -> bool:
        """Store a token; False when `parent` already has a successor (it was spent)."""
        try:
            await self._insert(token_hash, parent, family_id, user_id, now, expires_at)
        except DuplicateKeyError:
            return False
        if parent is not None:
            # For reading only; the unique `parent` above is what made the spend atomic.
            await self.collection.update_one({"_id": parent}, {"$set": {"spent_at": now}})
        return True

    async def _insert(
        self,
        token_hash: str,
        parent: str | None,
        family_id: str,
        user_id: str,
        now: datetime,
        expires_at: datetime,
    ) -> None:
        await self.collection.insert_one(
            {
                "_id": token_hash,
                "parent": parent or f"root:{family_id}",
                "family_id": family_id,
                "user_id": user_id,
                "created_at": now,
                "expires_at": expires_at,
                "spent_at": None,
                "revoked": False,
            }
        )

    async def get(self, token_hash: str) -> RefreshTokenRecord | None:
        doc = await self.collection.find_one({"_id": token_hash})
        return _record(doc) if doc else None

    async def is_revoked(self, token_hash: str) -> bool:
        return await self.collection.count_documents({"_id": token_hash, "revoked": True}) > 0

    async def revoke_family(self, family_id: str) -> None:
        await self.collection.update_many({"family_id": family_id}, {"$set": {"revoked": True}})

    async def revoke_user(self, user_id: str) -> None:
        await self.collection.update_many({"user_id": user_id}, {"$set": {"revoked": True}})

    async def delete_expired(self, now: datetime) -> int:
        # Spent tokens stay until they expire: they are what reuse detection recognises.
        result = await self.collection.delete_many({"expires_at": {"$lte": now}})
        return result.deleted_count
