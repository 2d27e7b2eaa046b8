"""Which documents hold pending outbox entries, found through an index.

Every entry has a string ``id`` (a uuid4), so ``{"_outbox.id": {"$gt": ""}}`` matches exactly
the documents whose ``_outbox`` holds an entry, as a range on the multikey index
:data:`PENDING_INDEX`: an index scan on MongoDB and on DocumentDB alike, however many
documents have an empty outbox. (``{"_outbox.0": {"$exists": true}}`` says the same but no
index serves it.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection

from taskmesh_common.events.envelope import OUTBOX_FIELD

__all__ = [
    "NOTHING_PENDING",
    "PENDING",
    "PENDING_INDEX",
    "Document",
    "entry_time",
    "find_pending",
    "oldest_entry",
]

Document = dict[str, Any]

PENDING: dict[str, Any] = {f"{OUTBOX_FIELD}.id": {"$gt": ""}}
NOTHING_PENDING: dict[str, Any] = {f"{OUTBOX_FIELD}.0": {"$exists": False}}
PENDING_INDEX = IndexModel([(f"{OUTBOX_FIELD}.id", ASCENDING)], name="outbox_pending")


async def find_pending(
    collection: AsyncCollection[Document],
    *,
    limit: int,
    also: Mapping[str, Any] | None = None,
    projection: Mapping[str, Any] | None = None,
) -> list[Document]:
    """Up to ``limit`` documents with a pending entry (and matching ``also``), by the index."""
    query = {**PENDING, **(also or {})}
    return [doc async for doc in collection.find(query, projection or {"_id": 1}, limit=limit)]


def entry_time(entry: Mapping[str, Any]) -> datetime | None:
    """When an outbox entry's event happened (its ``time``, UTC when naive); None when it
    has no readable time."""
    value = entry.get("time")
    try:
        when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def oldest_entry(docs: Sequence[Document]) -> tuple[int, datetime | None]:
    """How many entries ``docs`` hold, and the oldest one's time."""
    count, oldest = 0, None
    for doc in docs:
        for entry in doc.get(OUTBOX_FIELD) or []:
            count += 1
            when = entry_time(entry)
            if when is not None and (oldest is None or when < oldest):
                oldest = when
    return count, oldest
