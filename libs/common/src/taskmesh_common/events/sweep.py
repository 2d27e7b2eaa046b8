"""The sweep: pull published entries out of their documents, then forget their records.

The relay runs it when it has no full batch to publish (and when swept-late documents
start to crowd its pending scan): the per-document update FerretDB is slow at happens here,
off the publishing path. For each collection, up to ``limit`` ``outbox_published`` records:

1. lease the partitions of their documents (the claim's leases: no relay reads those
   documents for publishing meanwhile, so none sees an entry whose record is already gone;
   a relay's own sweep keeps what it takes with the partitions it holds, and takes every
   free one at once, so the slices of one sweep do not take them again);
2. read the documents, by ``_id`` (:func:`~taskmesh_common.mongo.find_by_ids`), except,
   where ``locks`` are given, those whose recorded entries the relay still holds as it
   published them (``remembered``): their values are what the document stores, so they are
   pulled without the read, and a pull that changes nothing (the values were not the
   stored ones after all) counts as failed: its records stay for a sweep that reads;
3. pull the recorded entries (values as read back, so ``$pullAll`` matches on FerretDB and
   MongoDB alike) and delete a tombstone (``_deleted: true``) once its outbox is empty:
   per document under its producers' lock where ``locks`` are given (FerretDB's updates are
   read-then-replace, FerretDB#3040: an unlocked pull landing over a producer's write would
   put the old document back; the free locks of 50 documents are taken and given back
   together, a busy document waits for the next sweep), else one ``update_many`` (MongoDB);
4. only then delete the records of the documents swept (a document that failed, e.g. its
   lock stayed taken, keeps its records and is swept next time);
5. release the leases (a relay's: with its own, see ``OutboxRelay.sweep``).

A crash anywhere leaves records whose entries are still in (or already out of) their
documents: they are skipped by claims either way, and a later sweep finishes the job.
:func:`drop_empty_tombstones` removes tombstones left empty by a crash between 3 and 4.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from typing import Any, Protocol

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from taskmesh_common.events.envelope import DELETED_FIELD, OUTBOX_FIELD
from taskmesh_common.events.published import Document, forget
from taskmesh_common.locks import DocumentLocks, LockTimeout
from taskmesh_common.mongo import find_by_ids

__all__ = [
    "NOTHING_PENDING",
    "PartitionLeases",
    "Remembered",
    "drop_empty_tombstones",
    "sweep",
    "sweep_collection",
]

logger = logging.getLogger("taskmesh.events.sweep")

NOTHING_PENDING: dict[str, Any] = {f"{OUTBOX_FIELD}.0": {"$exists": False}}
# A document as read by the sweep, and those of its entries that are recorded as published.
Work = list[tuple[Document, list[Mapping[str, Any]]]]
# The entries with these event ids as the relay published them (as stored), each handed out
# once; None when it does not know them all, or the document was a tombstone.
Remembered = Callable[[Sequence[Any]], list[Mapping[str, Any]] | None]
# Documents whose locks are held together: bounds how long a producer may wait on one.
_LOCK_CHUNK = 50


class PartitionLeases(Protocol):
    """How a sweep takes partitions: :class:`~taskmesh_common.events.leases.Leases`, or a
    relay's own, which keeps what the sweep took with the partitions it holds."""

    async def acquire(self, keys: Iterable[str]) -> dict[str, int]: ...

    async def release(self, held: dict[str, int]) -> None: ...


async def sweep(
    db: AsyncDatabase[Document],
    names: Iterable[str],
    published: AsyncCollection[Document],
    *,
    leases: PartitionLeases,
    partition_key: Callable[[str, Any], str],
    locks: Mapping[str, DocumentLocks],
    parallel: int,
    limit: int,
    tombstones: bool,
    remembered: Remembered | None = None,
) -> tuple[int, bool]:
    """:func:`sweep_collection` each collection (and, with ``tombstones``,
    :func:`drop_empty_tombstones`); returns records deleted, and whether that was all."""
    swept, complete = 0, True
    for name in names:
        n, done = await sweep_collection(
            db[name],
            published,
            leases=leases,
            partition_key=partition_key,
            locks=locks.get(name),
            parallel=parallel,
            limit=limit,
            remembered=remembered,
        )
        swept, complete = swept + n, complete and done
        if tombstones:
            await drop_empty_tombstones(db[name], locks.get(name), limit=limit)
    return swept, complete


async def sweep_collection(
    collection: AsyncCollection[Document],
    published: AsyncCollection[Document],
    *,
    leases: PartitionLeases,
    partition_key: Callable[[str, Any], str],
    locks: DocumentLocks | None,
    parallel: int,
    limit: int,
    remembered: Remembered | None = None,
) -> tuple[int, bool]:
    """Sweep up to ``limit`` published entries of ``collection``.

    Returns how many records it deleted, and whether that was all there were.
    """
    name = collection.name
    by_doc: dict[Any, list[Any]] = {}
    records = 0
    async for r in published.find({"collection": name}, {"doc_id": 1}, limit=limit):
        by_doc.setdefault(r["doc_id"], []).append(r["_id"])
        records += 1
    if not by_doc:
        return 0, True
    held = await leases.acquire(partition_key(name, d) for d in by_doc)
    if not held:
        return 0, False
    try:
        mine = [d for d in by_doc if partition_key(name, d) in held]
        work: Work = []
        unread = mine
        if locks is not None and remembered is not None:
            unread = []
            for doc_id in mine:
                entries = remembered(by_doc[doc_id])
                if entries is None:
                    unread.append(doc_id)
                else:
                    work.append(({"_id": doc_id}, entries))
        known = {doc["_id"] for doc, _ in work}
        fields = {OUTBOX_FIELD: 1, DELETED_FIELD: 1}
        found = await find_by_ids(collection, unread, fields)
        for doc_id, doc in found.items():
            ids = set(by_doc[doc_id])
            work.append((doc, [e for e in doc.get(OUTBOX_FIELD) or [] if e.get("id") in ids]))
        if locks is None:
            await _pull_batched(collection, work)
            failed: set[Any] = set()
        else:
            failed = await _pull_locked(collection, work, locks, parallel=parallel, known=known)
        # A document that is gone has nothing left to pull: its records go too.
        done = [r for d in mine if d not in failed for r in by_doc[d]]
        await forget(published, done)
        return len(done), len(done) == records < limit
    finally:
        await leases.release(held)


async def _pull_batched(collection: AsyncCollection[Document], work: Work) -> None:
    # One write for the whole batch. Entry ids are unique, so pulling every swept entry
    # from every document is exact; fine on MongoDB, where the update is atomic per document.
    entries = [e for _, es in work for e in es]
    if entries:
        await collection.update_many(
            {"_id": {"$in": [doc["_id"] for doc, es in work if es]}},
            {"$pullAll": {OUTBOX_FIELD: entries}},
        )
    tombstones = [doc["_id"] for doc, _ in work if doc.get(DELETED_FIELD) is True]
    if tombstones:
        await collection.delete_many(
            {"_id": {"$in": tombstones}, DELETED_FIELD: True, **NOTHING_PENDING}
        )


class _NotAsRemembered(Exception):
    """A pull by remembered values changed nothing: the document is read next time."""


async def _pull_locked(
    collection: AsyncCollection[Document],
    work: Work,
    locks: DocumentLocks,
    *,
    parallel: int,
    known: Container[Any] = (),
) -> set[Any]:
    """Each document's pull (and tombstone delete) under its lock; returns the failed ids.
    ``known``: documents not read, whose entries are remembered values (see :func:`sweep`).

    The documents go in chunks of ``_LOCK_CHUNK``: the chunk's free locks are taken with one
    insert and given back with one delete (a busy document is left for the next sweep), and
    the held documents are written ``parallel`` at a time. A lock each would cost two more
    writes per document on FerretDB's single SQLite writer, the sweep's largest cost.
    """
    slots = asyncio.Semaphore(parallel)
    failed: set[Any] = set()

    async def one(doc: Document, entries: list[Mapping[str, Any]]) -> None:
        async with slots:
            if entries:
                result = await collection.update_one(
                    {"_id": doc["_id"]}, {"$pullAll": {OUTBOX_FIELD: entries}}
                )
                if result.modified_count == 0 and doc["_id"] in known:
                    raise _NotAsRemembered(doc["_id"])
            if doc.get(DELETED_FIELD) is True:
                await collection.delete_one(
                    {"_id": doc["_id"], DELETED_FIELD: True, **NOTHING_PENDING}
                )

    for start in range(0, len(work), _LOCK_CHUNK):
        chunk = work[start : start + _LOCK_CHUNK]
        async with locks.holding_free(str(doc["_id"]) for doc, _ in chunk) as held:
            mine = [(doc, entries) for doc, entries in chunk if str(doc["_id"]) in held]
            failed |= {doc["_id"] for doc, _ in chunk if str(doc["_id"]) not in held}
            outcomes = await asyncio.gather(*(one(d, e) for d, e in mine), return_exceptions=True)
        for (doc, _), outcome in zip(mine, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                failed.add(doc["_id"])
                logger.info("outbox sweep skipped a document", extra={"error": repr(outcome)})
    return failed


async def drop_empty_tombstones(
    collection: AsyncCollection[Document], locks: DocumentLocks | None, *, limit: int
) -> int:
    """Delete up to ``limit`` tombstones whose outbox is empty (left so by a crash)."""
    query = {DELETED_FIELD: True, **NOTHING_PENDING}
    ids: Iterable[Any] = [d["_id"] async for d in collection.find(query, {"_id": 1}, limit=limit)]
    deleted = 0
    for doc_id in ids:
        if locks is None:
            result = await collection.delete_one({"_id": doc_id, **query})
        else:
            try:
                async with locks.holding(str(doc_id)):
                    result = await collection.delete_one({"_id": doc_id, **query})
            except LockTimeout:
                continue  # being written: next time
        deleted += result.deleted_count
    return deleted
