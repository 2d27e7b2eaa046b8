"""Settling a relay batch: pull the published entries from their documents, drop tombstones.

Two ways, chosen per collection by :class:`~taskmesh_common.events.relay.OutboxRelay`:

- batched (no locks): one ``update_many`` for the whole batch. Entry ids are unique, so
  pulling every published entry from every document is exact; fine on MongoDB, where
  the update is atomic per document.
- per document under its lock (``locks`` given): on FerretDB 1.24 an update is a
  read-then-replace outside a transaction (FerretDB#3040), so a batched pull landing over
  a producer's concurrent write puts the old document back, losing the change and its new
  outbox entry. Under the producer's own lock (:mod:`taskmesh_common.locks`) the two
  writes take turns.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from taskmesh_common.events.envelope import DELETED_FIELD, OUTBOX_FIELD
from taskmesh_common.locks import DocumentLocks

__all__ = ["NOTHING_PENDING", "Published", "settle_batched", "settle_locked"]

Document = dict[str, Any]
# A document as read under the relay's lease, and those of its entries that are out.
Published = tuple[Document, list[Document]]
NOTHING_PENDING: dict[str, Any] = {f"{OUTBOX_FIELD}.0": {"$exists": False}}


async def settle_batched(collection: AsyncCollection[Document], done: list[Published]) -> None:
    # One write for the whole batch (writes are what FerretDB is slowest at).
    # Values as read back, so $pullAll matches on FerretDB and MongoDB alike.
    await collection.update_many(
        {"_id": {"$in": [doc["_id"] for doc, _ in done]}},
        {"$pullAll": {OUTBOX_FIELD: [entry for _, entries in done for entry in entries]}},
    )
    tombstones = [doc["_id"] for doc, _ in done if doc.get(DELETED_FIELD) is True]
    if tombstones:
        await collection.delete_many(
            {"_id": {"$in": tombstones}, DELETED_FIELD: True, **NOTHING_PENDING}
        )


async def settle_locked(
    collection: AsyncCollection[Document],
    done: list[Published],
    locks: DocumentLocks,
    *,
    parallel: int,
) -> None:
    """Each document's pull (and tombstone delete) under its lock, ``parallel`` at a time.

    Raises the first failure (a :class:`~taskmesh_common.locks.LockTimeout` too) once every
    document has had its turn; the entries left are published again later, and consumers
    deduplicate.
    """
    slots = asyncio.Semaphore(parallel)

    async def one(doc: Document, entries: list[Document]) -> None:
        async with slots, locks.holding(str(doc["_id"])):
            await collection.update_one({"_id": doc["_id"]}, {"$pullAll": {OUTBOX_FIELD: entries}})
            if doc.get(DELETED_FIELD) is True:
                await collection.delete_one(
                    {"_id": doc["_id"], DELETED_FIELD: True, **NOTHING_PENDING}
                )

    outcomes = await asyncio.gather(*(one(d, e) for d, e in done), return_exceptions=True)
    failure = next((o for o in outcomes if isinstance(o, BaseException)), None)
    if failure is not None:
        raise failure
