"""MongoDB clients on PyMongo's async API, index creation at start-up, and inserts that
skip what already exists."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from prometheus_client import Counter
from pymongo import AsyncMongoClient, IndexModel, monitoring
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, OperationFailure, WriteError

__all__ = [
    "DUPLICATE_KEY",
    "MONGO_COMMANDS",
    "Document",
    "Inserted",
    "create_mongo_client",
    "drop_indexes_named",
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
_INDEX_NOT_FOUND = 27
logger = logging.getLogger("taskmesh.mongo")


MONGO_COMMANDS = Counter(
    "mongo_commands_total",
    "Commands sent to the MongoDB-protocol server, by command and collection",
    ["command", "collection"],
)


class _CommandCounter(monitoring.CommandListener):
    """Counts every command (``mongo_commands_total``): how many round trips a request or
    an event costs."""

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        target = event.command.get(event.command_name)
        collection = target if isinstance(target, str) else ""
        MONGO_COMMANDS.labels(event.command_name, collection).inc()

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def create_mongo_client(
    url: str,
    *,
    timeout_seconds: float = 3.0,
    max_pool_size: int = 100,
    event_listeners: Sequence[monitoring.CommandListener] = (),
) -> AsyncMongoClient[Document]:
    """A client whose every wait is bounded, so an absent server is a fast error, not a hang;
    its commands are counted in ``mongo_commands_total``. ``max_pool_size``: commands in
    flight at once (services pass ``mongo_max_pool_size``); ``event_listeners``: more
    PyMongo command listeners (tests, diagnostics).
    """
    ms = int(timeout_seconds * 1000)
    return AsyncMongoClient(
        url,
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
    db: AsyncDatabase[Document],
    indexes: Mapping[str, Sequence[IndexModel]],
    *,
    retired: Mapping[str, Iterable[str]] | None = None,
) -> None:
    """Create each collection's indexes: one ``createIndexes`` per collection.

    Idempotent: an index that exists already with the same name, keys and options is left
    as it is (MongoDB and DocumentDB alike), so every start of a service sends them all.
    ``retired`` names, per collection, indexes the code no longer uses: those that exist
    are dropped first (every write pays every index), so a replacement on the same keys
    can take their place.
    """
    for collection, names in (retired or {}).items():
        await drop_indexes_named(db[collection], names)
    for collection, models in indexes.items():
        if models:
            await db[collection].create_indexes(list(models))


async def drop_indexes_named(collection: AsyncCollection[Document], names: Iterable[str]) -> None:
    """Drop those of the indexes ``names`` that exist on ``collection``."""
    wanted = set(names)
    if not wanted:
        return
    present = {index["name"] async for index in await collection.list_indexes()}
    for name in sorted(wanted & present):
        try:
            await collection.drop_index(name)
        except OperationFailure as exc:
            if exc.code != _INDEX_NOT_FOUND:  # another replica dropped it first
                raise


async def ensure_indexes_forever(
    db: AsyncDatabase[Document],
    indexes: Mapping[str, Sequence[IndexModel]],
    ready: asyncio.Event,
    *,
    retired: Mapping[str, Iterable[str]] | None = None,
    max_delay: float = 5.0,
) -> None:
    """Create indexes, retrying while the server is away; sets `ready` once done.

    A service starts (and reports 503 on /readyz) even when MongoDB is down, then
    catches up when it returns, instead of crash-looping.
    """
    delay = 0.2
    while True:
        try:
            await ensure_indexes(db, indexes, retired=retired)
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

    How records keyed by a unique ``_id`` (dedupe records, say) are written many at once:
    one round trip, and a duplicate is no error.
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
) -> dict[Any, Document]:
    """The documents with these ``_id`` s that exist, by id: one ``find({_id: {$in: ids}})``."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return {}
    return {doc["_id"]: doc async for doc in collection.find({"_id": {"$in": wanted}}, projection)}
