"""Refresh tokens in MongoDB: only their SHA-256, grouped in families for reuse detection.

A token is spent by one `find_one_and_update` whose filter holds every condition (unspent,
not revoked, unexpired), so of concurrent uses of one token exactly one matches. Expired
tokens are deleted by a TTL index on `expires_at`; until the TTL monitor gets to them the
filter still refuses them. Spent tokens stay until they expire: they are what reuse
detection recognises.

A family has an absolute end (`family_expires_at`, set at login and carried over by every
rotation); no token of it expires later, so `expires_at` alone enforces it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from taskmesh_common.mongo import Document

__all__ = [
    "REFRESH_TOKEN_INDEXES",
    "RETIRED_REFRESH_TOKEN_INDEXES",
    "RefreshTokenRecord",
    "RefreshTokenRepository",
]

REFRESH_TOKEN_INDEXES = [
    IndexModel([("family_id", ASCENDING)], name="family"),
    IndexModel([("user_id", ASCENDING)], name="user"),
    IndexModel([("expires_at", ASCENDING)], name="expires", expireAfterSeconds=0),
]
# Dropped where present: `parent_unique` would refuse every token after the first (they have
# no `parent`), and `expiry` holds the key pattern the TTL index `expires` needs.
RETIRED_REFRESH_TOKEN_INDEXES = ["parent_unique", "expiry"]


@dataclass(frozen=True)
class RefreshTokenRecord:
    token_hash: str
    family_id: str
    user_id: str
    expires_at: datetime
    spent: bool
    revoked: bool
    # None for tokens stored before families had an absolute end.
    family_expires_at: datetime | None = None


def _record(doc: dict[str, Any]) -> RefreshTokenRecord:
    return RefreshTokenRecord(
        token_hash=doc["_id"],
        family_id=doc["family_id"],
        user_id=doc["user_id"],
        expires_at=doc["expires_at"],
        spent=doc.get("spent_at") is not None,
        revoked=bool(doc.get("revoked", False)),
        family_expires_at=doc.get("family_expires_at"),
    )


class RefreshTokenRepository:
    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self.collection = collection

    async def add(
        self,
        token_hash: str,
        *,
        family_id: str,
        user_id: str,
        now: datetime,
        expires_at: datetime,
        family_expires_at: datetime,
    ) -> None:
        await self.collection.insert_one(
            {
                "_id": token_hash,
                "family_id": family_id,
                "user_id": user_id,
                "created_at": now,
                "expires_at": min(expires_at, family_expires_at),
                "family_expires_at": family_expires_at,
                "spent_at": None,
                "revoked": False,
            }
        )

    async def spend(self, token_hash: str, now: datetime) -> RefreshTokenRecord | None:
        """Mark a usable token spent and return it; None when it is unknown, expired, spent
        or revoked (`get` tells which)."""
        doc = await self.collection.find_one_and_update(
            {"_id": token_hash, "spent_at": None, "revoked": False, "expires_at": {"$gt": now}},
            {"$set": {"spent_at": now}},
            return_document=ReturnDocument.AFTER,
        )
        return _record(doc) if doc else None

    async def get(self, token_hash: str) -> RefreshTokenRecord | None:
        doc = await self.collection.find_one({"_id": token_hash})
        return _record(doc) if doc else None

    async def is_revoked(self, token_hash: str) -> bool:
        return await self.collection.count_documents({"_id": token_hash, "revoked": True}) > 0

    async def revoke_family(self, family_id: str) -> None:
        await self.collection.update_many(
            {"family_id": family_id, "revoked": False}, {"$set": {"revoked": True}}
        )

    async def revoke_user(self, user_id: str) -> None:
        await self.collection.update_many(
            {"user_id": user_id, "revoked": False}, {"$set": {"revoked": True}}
        )
