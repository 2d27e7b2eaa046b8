"""Users in MongoDB, each document carrying its own outbox of pending events.

Every write is one atomic operation: a registration an insert (the unique email index makes a
duplicate a 409), every change of an existing user one conditional update whose filter holds
what the change depends on, with its events pushed onto `_outbox` in the same write.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError
from taskmesh_common.events import DELETED_FIELD, OUTBOX_FIELD
from taskmesh_common.mongo import Document

from auth_service.domain.errors import EmailTaken
from auth_service.domain.model import User

__all__ = [
    "USER_INDEXES",
    "UserRepository",
    "decode_cursor",
    "email_filter",
    "encode_cursor",
]

BOOTSTRAP_ADMIN_FIELD = "bootstrap_admin"
USER_INDEXES = [
    # Emails are stored normalised, so this one index makes "any letter case" a duplicate.
    IndexModel([("email", ASCENDING)], unique=True, name="email_unique"),
    IndexModel([("created_at", ASCENDING), ("_id", ASCENDING)], name="created_order"),
    # Only the bootstrap admin carries the field: replicas starting together (even with
    # different bootstrap emails) can create one such account between them, never two.
    IndexModel(
        [(BOOTSTRAP_ADMIN_FIELD, ASCENDING)], unique=True, sparse=True, name="bootstrap_admin"
    ),
]
LIVE: Document = {DELETED_FIELD: {"$ne": True}}


def email_filter(email: str) -> Document:
    """A live user by normalised email: an equality on `email_unique`."""
    return {"email": email, **LIVE}


def _user(doc: Mapping[str, Any]) -> User:
    return User(
        id=doc["_id"],
        email=doc["email"],
        display_name=doc.get("display_name"),
        role=doc.get("role", "user"),
        disabled=bool(doc.get("disabled", False)),
        created_at=doc["created_at"],
        password_hash=doc.get("password_hash", ""),
    )


def encode_cursor(user: User) -> str:
    raw = json.dumps([user.created_at.isoformat(), user.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Raises ValueError for anything that is not a cursor we issued."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, user_id = json.loads(raw)
        if not isinstance(user_id, str) or not isinstance(created, str):
            raise ValueError("bad cursor")
        return datetime.fromisoformat(created), user_id
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError("invalid cursor") from exc


class UserRepository:
    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self.collection = collection

    async def add(
        self, user: User, events: list[Document], *, bootstrap_admin: bool = False
    ) -> None:
        """Insert a new user; EmailTaken if the email (or, for the bootstrap admin, the one
        bootstrap admin's place) is taken."""
        doc: Document = {
            "_id": user.id,
            "email": user.email,
            "display_name": user.display_name,
            "role": user.role,
            "disabled": user.disabled,
            "password_hash": user.password_hash,
            "created_at": user.created_at,
            "updated_at": user.created_at,
            OUTBOX_FIELD: events,
        }
        if bootstrap_admin:
            doc[BOOTSTRAP_ADMIN_FIELD] = True
        try:
            await self.collection.insert_one(doc)
        except DuplicateKeyError:
            raise EmailTaken() from None

    async def by_email(self, email: str) -> User | None:
        doc = await self.collection.find_one(email_filter(email))
        return _user(doc) if doc else None

    async def any_admin(self) -> bool:
        """Whether any admin exists, enabled or not (deleted ones do not count)."""
        return await self.collection.find_one({"role": "admin", **LIVE}, {"_id": 1}) is not None

    async def by_id(self, user_id: str) -> User | None:
        doc = await self.collection.find_one({"_id": user_id, **LIVE})
        return _user(doc) if doc else None

    async def set_password_hash(self, user_id: str, old_hash: str, new_hash: str) -> bool:
        """Whether it was set: conditional on the old hash, so of a password change and a
        re-hash racing, or two changes, only the first wins."""
        result = await self.collection.update_one(
            {"_id": user_id, "password_hash": old_hash, **LIVE},
            {"$set": {"password_hash": new_hash}},
        )
        return result.modified_count == 1

    async def page(self, limit: int, after: tuple[datetime, str] | None) -> list[User]:
        query: Document = dict(LIVE)
        if after is not None:
            created, user_id = after
            query["$or"] = [
                {"created_at": {"$gt": created}},
                {"created_at": created, "_id": {"$gt": user_id}},
            ]
        cursor = self.collection.find(query).sort([("created_at", 1), ("_id", 1)]).limit(limit)
        return [_user(doc) async for doc in cursor]

    async def change(
        self, current: User, changes: Document, events: list[Document], now: datetime
    ) -> User | None:
        """Apply changes only if the user is still as read (None otherwise: re-read and retry).

        The events were computed from `current` (`previous_role`), so the filter compares
        what they depend on: a concurrent change makes this one miss instead of lying.
        """
        doc = await self.collection.find_one_and_update(
            {"_id": current.id, "role": current.role, "disabled": current.disabled, **LIVE},
            {
                "$set": {**changes, "updated_at": now},
                "$push": {OUTBOX_FIELD: {"$each": events}},
            },
            return_document=ReturnDocument.AFTER,
        )
        return _user(doc) if doc else None

    async def tombstone(self, user_id: str, event: Document, now: datetime) -> bool:
        """Delete a user, keeping a tombstone that holds the user.deleted event until published.

        Personal data goes at once. The email is moved aside to a per-user placeholder
        (unique, so the unique index holds), which frees the address for a new account.
        """
        result = await self.collection.update_one(
            {"_id": user_id, **LIVE},
            {
                "$set": {
                    DELETED_FIELD: True,
                    "deleted_at": now,
                    "email": f"deleted:{user_id}",
                    "disabled": True,
                },
                "$unset": {"password_hash": "", "display_name": ""},
                "$push": {OUTBOX_FIELD: event},
            },
        )
        return result.modified_count == 1
