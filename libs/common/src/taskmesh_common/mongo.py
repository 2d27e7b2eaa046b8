"""MongoDB clients on PyMongo's async API, index creation at start-up, and inserts that
skip what already exists."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from prometheus_client import Counter
from pymongo import AsyncMongoClient, DeleteOne, IndexModel, monitoring
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, WriteError

__all__ = [
    "DUPLICATE_KEY",
    "MONGO_COMMANDS",
    "Document",
    "Inserted",
    "create_mongo_client",
    "delete_by_ids",
    "duplicate_positions",
    "ensure_indexes",
    "ensure_indexes_forever",
    "find_by_ids",
    "insert_each",
    "insert_new",
    "mongo_ping",
]

Document = dict[str, Any]
DUPLICATE_KEY = 11000
logger = logging.getLogger("taskmesh.mongo")


MONGO_COMMANDS = Counter(
    "mongo_commands_total",
    "Commands sent to the MongoDB-protocol server, by command and collection",
    ["command", "collection"],
)


class _CommandCounter(monitoring.CommandListener):
    """Counts every command (``mongo_commands_total``): how many round trips a request or
    an event costs, which is what FerretDB's throughput depends on."""

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        target = event.command.get(event.command_name)
        collection = target if isinstance(target, str) else ""
        MONGO_COMMANDS.labels(event.command_name, collection).inc()

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


class _WriteGatedClient(AsyncMongoClient[Document]):
    """A client that sends at most ``max_writes`` writes at a time; reads are not held.

    Every write of PyMongo (insert, update, delete, bulk, find-and-modify) goes through
    ``_retryable_write``, before it takes a connection: writes beyond the limit wait here, in
    order, instead of in SQLite's busy handler, which sleeps (see ``create_mongo_client``).
    """

    def __init__(self, *args: Any, max_writes: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._write_slots = asyncio.Semaphore(max_writes)

    async def _retryable_write(self, *args: Any, **kwargs: Any) -> Any:
        async with self._write_slots:
            return await super()._retryable_write(*args, **kwargs)


def create_mongo_client(
    url: str,
    *,
    timeout_seconds: float = 3.0,
    max_pool_size: int = 100,
    max_writes: int = 0,
    event_listeners: Sequence[monitoring.CommandListener] = (),
) -> AsyncMongoClient[Document]:
    """A client whose every wait is bounded, so an absent server is a fast error, not a hang;
    its commands are counted in ``mongo_commands_total``. ``max_pool_size``: commands in
    flight at once; ``max_writes`` (0: no limit): writes in flight at once (services pass
    ``mongo_max_pool_size`` and ``mongo_max_writes``); ``event_listeners``: more PyMongo
    command listeners (tests, diagnostics).

    FerretDB on SQLite has one writer per database; a writer that finds it taken waits in
    SQLite's busy handler, which sleeps and retries, so under concurrent writes some wait
    hundreds of milliseconds for nothing (docs/performance.md).
    """
    ms = int(timeout_seconds * 1000)
    cls: type[AsyncMongoClient[Document]] = AsyncMongoClient
    extra: dict[str, Any] = {}
    if max_writes > 0:
        cls, extra = _WriteGatedClient, {"max_writes": max_writes}
    return cls(
        url,
        **extra,
        maxPoolSize=max_pool_size,
        event_listeners=[_CommandCounter(), *event_listeners],
        serverSelectionTimeoutMS=ms,
        connectTimeoutMS=ms,
        socketTimeoutMS=max(ms * 3, 10_000),
        timeoutMS=None,
        tz_aware=True,
        uuidRepresentation="standard",
        appname="taskmesh",
    )


async def mongo_ping(client: AsyncMongoClient[Document]) -> None:
    await client.admin.command("ping")


async def ensure_indexes(
    db: AsyncDatabase[Document], indexes: Mapping[str, Sequence[IndexModel]]
) -> None:
    """Create the indexes a collection does not have yet (by name).

    Only the missing ones are sent: FerretDB 1.24 drops the connection (a panic in its
    ``createIndexes``) when one call names several indexes that already exist, which is
    every restart of a service on its existing database.
    """
    for collection, models in indexes.items():
        existing = {index["name"] async for index in await db[collection].list_indexes()}
        missing = [m for m in models if m.document["name"] not in existing]
        if missing:
            await db[collection].create_indexes(missing)


async def ensure_indexes_forever(
    db: AsyncDatabase[Document],
    indexes: Mapping[str, Sequence[IndexModel]],
    ready: asyncio.Event,
    *,
    max_delay: float = 5.0,
) -> None:
    """Create indexes, retrying while the server is away; sets `ready` once done.

    A service starts (and reports 503 on /readyz) even when MongoDB is down, then
    catches up when it returns, instead of crash-looping.
    """
    delay = 0.2
    while True:
        try:
            await ensure_indexes(db, indexes)
        except Exception as exc:
            logger.warning("index creation failed, retrying", extra={"error": str(exc)})
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
        else:
            ready.set()
            return


async def insert_new(
    collection: AsyncCollection[Document], documents: Sequence[Document]
) -> set[int]:
    """Insert ``documents`` with one unordered ``insert_many``; returns the positions refused
    because their ``_id`` (or another unique key) exists already. Any other error is raised.

    A unique insert is atomic on FerretDB and MongoDB alike, so this is how leases, locks,
    dedupe records and the outbox's published records are taken: one round trip for many.
    """
    if not documents:
        return set()
    try:
        await collection.insert_many(list(documents), ordered=False)
    except BulkWriteError as exc:
        return duplicate_positions(exc)
    return set()


def _refused(exc: BulkWriteError) -> dict[int, Mapping[str, Any]]:
    """The documents a bulk write refused, by position; ``exc`` again when that is not all
    it says (a write concern error, or no document named)."""
    errors = exc.details.get("writeErrors") or []
    if not errors or exc.details.get("writeConcernErrors"):
        raise exc
    return {int(error["index"]): error for error in errors}


def duplicate_positions(exc: BulkWriteError) -> set[int]:
    """The positions a bulk write refused as duplicate keys; ``exc`` again for anything else."""
    refused = _refused(exc)
    if any(error.get("code") != DUPLICATE_KEY for error in refused.values()):
        raise exc
    return set(refused)


# What inserting one document of a batch came to: written (True), refused as a duplicate
# key (False), or refused for another reason.
Inserted = bool | WriteError


async def insert_each(
    collection: AsyncCollection[Document], documents: Sequence[Document]
) -> list[Inserted]:
    """Insert ``documents`` with one unordered ``insert_many`` (which writes every document
    it does not refuse) and tell each one's outcome apart, so one bad document of a batch
    fails only its own caller. An error that names no document is raised."""
    if not documents:
        return []
    try:
        await collection.insert_many(list(documents), ordered=False)
    except BulkWriteError as exc:
        refused = _refused(exc)
    else:
        return [True] * len(documents)
    outcomes: list[Inserted] = []
    for n in range(len(documents)):
        error = refused.get(n)
        if error is None:
            outcomes.append(True)
        elif error.get("code") == DUPLICATE_KEY:
            outcomes.append(False)
        else:
            outcomes.append(WriteError(str(error.get("errmsg")), error.get("code"), error))
    return outcomes


async def find_by_ids(
    collection: AsyncCollection[Document],
    ids: Iterable[Any],
    projection: Mapping[str, Any] | None = None,
    *,
    parallel: int = 32,
) -> dict[Any, Document]:
    """The documents with these ``_id`` s that exist, by id: one ``find_one({_id})`` each,
    ``parallel`` at a time.

    Not one ``find({_id: {$in: ids}})``: FerretDB 1.24 on SQLite uses an index only for a
    filter that is exactly ``{_id: <value>}`` and reads the whole collection for anything
    else, so an ``$in`` costs as much as the collection is large, and lookups by ``_id``
    stay cheap however large it grows (on MongoDB both use the ``_id`` index).
    """
    wanted = list(dict.fromkeys(ids))
    slots = asyncio.Semaphore(parallel)

    async def one(doc_id: Any) -> Document | None:
        async with slots:
            return await collection.find_one({"_id": doc_id}, projection)

    found = await asyncio.gather(*(one(doc_id) for doc_id in wanted))
    return {doc_id: doc for doc_id, doc in zip(wanted, found, strict=True) if doc is not None}


async def delete_by_ids(collection: AsyncCollection[Document], ids: Iterable[Any]) -> None:
    """Delete the documents with these ``_id`` s: one bulk write of ``DeleteOne({_id})``.

    Not one ``delete_many({_id: {$in: ids}})``: on FerretDB 1.24 (SQLite) that reads the
    whole collection (see :func:`find_by_ids`) while it holds the database's one write lock,
    and every other writer meanwhile sleeps in SQLite's busy handler.
    """
    wanted = list(dict.fromkeys(ids))
    if wanted:
        await collection.bulk_write([DeleteOne({"_id": i}) for i in wanted], ordered=False)
