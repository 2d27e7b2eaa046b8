"""The indexes of the tasks service's collections, made at start while the server is away."""

from __future__ import annotations

import asyncio

from pymongo.asynchronous.database import AsyncDatabase
from taskmesh_common.mongo import Document, ensure_indexes_forever

from tasks_service.adapters.idempotency import KEYS_COLLECTION, key_indexes
from tasks_service.adapters.removed_owners import REMOVED_OWNERS_COLLECTION, removed_owner_indexes
from tasks_service.adapters.repository import COLLECTION, task_indexes

__all__ = ["prepare_indexes_forever"]

# Indexes tasks no longer use. `idempotency_key` is unique on `idem`, a field task documents
# no longer have: MongoDB indexes the missing field as null and would refuse every second
# insert. The per-filter indexes cost every write more than they saved a list.
_RETIRED = {
    COLLECTION: frozenset(
        {"idempotency_key", "owner_status", "owner_priority", "owner_tags", "owner_due_date"}
    )
}


async def prepare_indexes_forever(db: AsyncDatabase[Document], ready: asyncio.Event) -> None:
    """Drop retired indexes and create the missing ones, then set `ready`."""
    await ensure_indexes_forever(
        db,
        {
            COLLECTION: task_indexes(),
            KEYS_COLLECTION: key_indexes(),
            REMOVED_OWNERS_COLLECTION: removed_owner_indexes(),
        },
        ready,
        retired=_RETIRED,
    )
