"""The analytics database: stored events, the projections (in generations), deleted users.

Collections:
- `events`: every event this service applied (`_id` = event id), its own event store,
  the source a rebuild replays.
- `task_facts<suffix>`: one fact per task (see `domain.model`), version-guarded, with
  tombstones; the admin overview counts over it.
- `owner_stats<suffix>`: one document per user holding a compact entry per task (one JSON
  array string each, guarded by the same version), from which that user's summary and
  timeline are computed. One read by `_id` per request: FerretDB 1.24 on SQLite uses no secondary index (every other
  filter is a full scan), so per-user questions must not filter the facts collection.
- `deleted_users`: users whose `user.deleted` was applied; their late task events are
  dropped instead of bringing statistics back.
- `locks`: per-user write locks (`taskmesh_common.locks`): FerretDB's conditional updates are
  not atomic, so writers of one user's documents take turns.

A rebuild writes a fresh generation (a new suffix) and switches the `meta` pointer to it,
so readers never see a half-built projection; FerretDB cannot `renameCollection` over an
existing collection.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, InsertOne, ReplaceOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError
from taskmesh_common.locks import DocumentLocks
from taskmesh_common.mongo import Document, duplicate_positions, insert_new

__all__ = [
    "BASE_FACTS",
    "BASE_STATS",
    "EVENTS",
    "FACT_INDEXES",
    "FactsTable",
    "Generation",
    "OwnerStatsTable",
    "ProjectionStore",
    "decode_entry",
    "encode_entry",
]

EVENTS = "events"
DELETED_USERS = "deleted_users"
META = "meta"
LOCKS = "locks"
BASE_FACTS = "task_facts"
BASE_STATS = "owner_stats"
_POINTER_ID = "projection"

# For real MongoDB (FerretDB on SQLite ignores them): each serves a query of the overview
# or a user deletion.
FACT_INDEXES = [
    IndexModel([("owner_id", ASCENDING)]),
    IndexModel([("deleted", ASCENDING), ("status", ASCENDING)]),
    IndexModel([("changed_at", DESCENDING)]),
    IndexModel([("created_day", ASCENDING)]),
    IndexModel([("completed_day", ASCENDING)]),
]
STORE_INDEXES: dict[str, list[IndexModel]] = {
    EVENTS: [
        IndexModel([("stored_at", ASCENDING), ("_id", ASCENDING)]),
        IndexModel([("owner_id", ASCENDING)]),
    ],
}


class FactsTable:
    """Version-guarded writes to one generation of task facts."""

    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self.collection = collection

    async def put(self, fact: Mapping[str, Any]) -> bool:
        """Store the fact unless the stored one is as new or newer; True when it changed.

        The filter matches only an older version; when none matches, the upsert tries to
        insert the same `_id` and the unique index refuses it. That refusal means either "a
        newer or equal version is there" or "another replica inserted this task a moment
        ago, maybe an older version": the plain guarded replace that follows tells them apart.
        """
        guard = {"_id": fact["_id"], "version": {"$lt": fact["version"]}}
        try:
            await self.collection.replace_one(guard, dict(fact), upsert=True)
        except DuplicateKeyError:
            result = await self.collection.replace_one(guard, dict(fact))
            return result.matched_count == 1
        return True

    async def put_many(self, facts: list[Mapping[str, Any]], *, new: set[str]) -> None:
        """`put` for each fact in one bulk write, inserting tasks in `new` (not known yet).

        Only under the user's lock (nobody else writes these facts meanwhile): the stored
        versions of the known tasks are read by `_id` alone, and a fact replaces its stored
        one only when newer. A guarded filter (`{_id, version: {$lt}}`) would do the same in
        one write, but FerretDB 1.24 uses an index only for a filter that is exactly
        `{_id: <string>}`: the guard scanned every fact of every user, per task. A write
        refused for a duplicate `_id` (a "new" task stored after all) goes through `put`.
        """
        if not facts:
            return
        known = [fact for fact in facts if fact["_id"] not in new]
        stored = await asyncio.gather(
            *(self.collection.find_one({"_id": fact["_id"]}, {"version": 1}) for fact in known)
        )
        older = {
            fact["_id"]
            for fact, doc in zip(known, stored, strict=True)
            if doc is not None and doc.get("version", 0) >= fact["version"]
        }
        todo = [fact for fact in facts if fact["_id"] not in older]
        writes: list[InsertOne[Document] | ReplaceOne[Document]] = [
            InsertOne(dict(fact))
            if fact["_id"] in new
            else ReplaceOne({"_id": fact["_id"]}, dict(fact), upsert=True)
            for fact in todo
        ]
        if not writes:
            return
        try:
            await self.collection.bulk_write(writes, ordered=False)
        except BulkWriteError as exc:
            for index in sorted(duplicate_positions(exc)):
                await self.put(todo[index])

    async def forget_owner(self, owner_id: str) -> int:
        result = await self.collection.delete_many({"owner_id": owner_id})
        return result.deleted_count

    async def create_indexes(self) -> None:
        await self.collection.create_indexes(FACT_INDEXES)


def encode_entry(entry: Mapping[str, Any]) -> str:
    """A statistics entry (`stats_entry`) as one JSON array string.

    FerretDB decodes the whole per-user document on every read and write, and a nested
    document per task costs it 3-4x what a string does (find_one of a user with 500 tasks:
    31 ms nested, 7.5 ms as strings; docs/performance.md). Times keep BSON's milliseconds.
    Tombstones: `[v, at]`; live tasks: `[v, at, s, p, cd, kd, cs, due]`.
    """
    at = _iso(entry["at"])
    if entry.get("x"):
        return json.dumps([entry["v"], at], separators=(",", ":"))
    fields = [entry["v"], at, entry["s"], entry["p"], entry["cd"], entry["kd"], entry["cs"]]
    due = entry["due"]
    return json.dumps([*fields, None if due is None else _iso(due)], separators=(",", ":"))


def decode_entry(stored: Any) -> dict[str, Any]:
    """An entry as `stats_entry` made it, from `encode_entry`'s string (or the nested
    document earlier versions stored, which is returned as it is)."""
    if isinstance(stored, Mapping):
        return dict(stored)
    values = json.loads(stored)
    version, at = int(values[0]), datetime.fromisoformat(values[1])
    if len(values) == 2:
        return {"v": version, "x": True, "at": at}
    _, _, status, priority, created, completed, seconds, due = values
    return {
        "v": version,
        "s": status,
        "p": priority,
        "cd": created,
        "kd": completed,
        "cs": seconds,
        "due": None if due is None else datetime.fromisoformat(due),
        "at": at,
    }


def _iso(moment: datetime) -> str:
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.isoformat(timespec="milliseconds")


class OwnerStatsTable:
    """Per-user documents `{_id: owner_id, t: {<task key>: entry}}`, each entry one string
    (`encode_entry`) carrying its task's version, compared under the user's lock before it
    is replaced."""

    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self.collection = collection

    async def versions(self, owner_id: str, keys: list[str]) -> dict[str, int] | None:
        """The stored version of each of these entries (None: the user has no document)."""
        projection = {f"t.{key}": 1 for key in keys}
        document = await self.collection.find_one({"_id": owner_id}, projection or {"_id": 1})
        if document is None:
            return None
        return {key: decode_entry(entry)["v"] for key, entry in document.get("t", {}).items()}

    async def put_many(
        self, owner_id: str, entries: Mapping[str, Mapping[str, Any]], *, exists: bool
    ) -> None:
        """Set these entries, unguarded: only under the user's lock, after `versions`."""
        if not entries:
            return
        encoded = {key: encode_entry(entry) for key, entry in entries.items()}
        if not exists:
            try:
                await self.collection.insert_one({"_id": owner_id, "t": encoded})
                return
            except DuplicateKeyError:
                pass
        change = {f"t.{key}": entry for key, entry in encoded.items()}
        await self.collection.update_one({"_id": owner_id}, {"$set": change}, upsert=True)

    async def entries(self, owner_id: str) -> list[dict[str, Any]]:
        document = await self.collection.find_one({"_id": owner_id})
        return [decode_entry(entry) for entry in (document or {}).get("t", {}).values()]

    async def forget_owner(self, owner_id: str) -> None:
        await self.collection.delete_one({"_id": owner_id})


@dataclass(frozen=True)
class Generation:
    """The projections of one build, written and read together."""

    suffix: str
    facts: FactsTable
    stats: OwnerStatsTable

    @classmethod
    def of(cls, db: AsyncDatabase[Document], suffix: str) -> Generation:
        return cls(
            suffix, FactsTable(db[BASE_FACTS + suffix]), OwnerStatsTable(db[BASE_STATS + suffix])
        )

    async def create_indexes(self) -> None:
        await self.facts.create_indexes()

    async def drop(self, db: AsyncDatabase[Document]) -> None:
        await db.drop_collection(self.facts.collection.name)
        await db.drop_collection(self.stats.collection.name)


class ProjectionStore:
    """Where the projections live; the current facts generation is cached briefly.

    The cache keeps one extra read off every event and request; after a rebuild switches
    generations, replicas follow within `pointer_cache_seconds` (the rebuild waits longer
    than that before its catch-up pass).
    """

    def __init__(self, db: AsyncDatabase[Document], *, pointer_cache_seconds: float = 1.0) -> None:
        self.db = db
        self.events = db[EVENTS]
        self.deleted_users = db[DELETED_USERS]
        self.meta = db[META]
        # A batch holds it for milliseconds: ten seconds is a generous lease for a killed
        # replica's lock; a LockTimeout only means the events are retried later.
        self.locks = DocumentLocks(db[LOCKS], stale_after=timedelta(seconds=10), wait_seconds=12.0)
        self.pointer_cache_seconds = pointer_cache_seconds
        self._cached: tuple[float, Generation] | None = None

    # -- generations --------------------------------------------------------------------

    async def current(self) -> Generation:
        now = time.monotonic()
        if self._cached is not None and now - self._cached[0] < self.pointer_cache_seconds:
            return self._cached[1]
        pointer = await self.meta.find_one({"_id": _POINTER_ID})
        generation = Generation.of(self.db, str(pointer["suffix"]) if pointer else "")
        self._cached = (now, generation)
        return generation

    async def switch_to(self, generation: Generation) -> None:
        await self.meta.update_one(
            {"_id": _POINTER_ID},
            {"$set": {"suffix": generation.suffix, "switched_at": datetime.now(UTC)}},
            upsert=True,
        )
        self._cached = None

    def indexes(self) -> dict[str, list[IndexModel]]:
        """Indexes for `ensure_indexes_forever` at start-up (the base facts generation too)."""
        return {**STORE_INDEXES, BASE_FACTS: FACT_INDEXES}

    # -- the event store ----------------------------------------------------------------

    async def record_event(self, envelope: Mapping[str, Any], owner_id: str) -> bool:
        """Keep an applied event for rebuilds; False when it was already stored."""
        return await self.record_events([envelope], owner_id) == 1

    async def record_events(self, envelopes: Sequence[Mapping[str, Any]], owner_id: str) -> int:
        """Keep applied events (one insert); how many were new (duplicates are skipped)."""
        now = datetime.now(UTC)
        documents = [
            {
                "_id": envelope["id"],
                "owner_id": owner_id,
                "type": envelope["type"],
                "envelope": dict(envelope),
                "stored_at": now,
            }
            for envelope in envelopes
        ]
        return len(documents) - len(await insert_new(self.events, documents))

    async def stored_events(
        self, since: datetime | None = None, *, batch_size: int = 500
    ) -> AsyncIterator[dict[str, Any]]:
        """Stored envelopes in the order they were stored."""
        query: dict[str, Any] = {} if since is None else {"stored_at": {"$gte": since}}
        cursor = self.events.find(query, batch_size=batch_size).sort(
            [("stored_at", ASCENDING), ("_id", ASCENDING)]
        )
        async for document in cursor:
            yield dict(document["envelope"])

    async def forget_owner_events(self, owner_id: str, *, keep: str | None = None) -> None:
        query: dict[str, Any] = {"owner_id": owner_id}
        if keep is not None:
            query["_id"] = {"$ne": keep}
        await self.events.delete_many(query)

    # -- deleted users ------------------------------------------------------------------

    async def mark_user_deleted(self, user_id: str, deleted_at: datetime) -> None:
        await self.deleted_users.update_one(
            {"_id": user_id}, {"$setOnInsert": {"deleted_at": deleted_at}}, upsert=True
        )

    async def is_user_deleted(self, user_id: str) -> bool:
        return await self.deleted_users.find_one({"_id": user_id}, {"_id": 1}) is not None
