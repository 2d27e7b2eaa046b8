"""The analytics database: stored events, the projections (in generations), deleted users.

Collections:
- `events`: every event this service applied (`_id` = event id), its own event store,
  the source a rebuild replays.
- `task_facts<suffix>`: one fact per task (see `domain.model`), version-guarded, with
  tombstones; the admin overview counts over it.
- `owner_stats<suffix>` and `owner_stats_sealed<suffix>`: each user's compact entry per task
  (one JSON array string each, guarded by the same version), in chunks of at most
  `STATS_CHUNK_ENTRIES` (`OwnerStatsTable`), from which that user's summary and timeline
  are computed. Reads by `_id` only: FerretDB 1.24 on SQLite uses no secondary index (every
  other filter is a full scan), so per-user questions must not filter the facts collection.
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
from taskmesh_common.mongo import (
    Document,
    delete_by_ids,
    duplicate_positions,
    find_by_ids,
    insert_new,
)

from analytics_service.domain.model import stats_entry, supersedes

__all__ = [
    "BASE_FACTS",
    "BASE_SEALED",
    "BASE_STATS",
    "EVENTS",
    "FACT_INDEXES",
    "STATS_CHUNK_ENTRIES",
    "FactsTable",
    "Generation",
    "OpenChunk",
    "OwnerStatsTable",
    "ProjectionStore",
    "chunk_id",
    "decode_entry",
    "encode_entry",
]

EVENTS = "events"
DELETED_USERS = "deleted_users"
META = "meta"
LOCKS = "locks"
BASE_FACTS = "task_facts"
BASE_STATS = "owner_stats"
BASE_SEALED = "owner_stats_sealed"
# Entries in a user's open statistics chunk before it is sealed. An event of any task then
# costs FerretDB what it costs for a user with at most this many tasks; a summary reads one
# document more per chunk (docs/performance.md, ninth session: 25, 50, 100 and 200 probed).
STATS_CHUNK_ENTRIES = 50
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

    async def stored(self, task_ids: list[str]) -> dict[str, Document]:
        """The stored version and chunk (`OwnerStatsTable`) of these tasks' facts, by task id.

        One `find_one` by `_id` each: FerretDB 1.24 uses an index only for a filter that is
        exactly `{_id: <string>}` (`taskmesh_common.mongo.find_by_ids`).
        """
        return await find_by_ids(self.collection, task_ids, {"version": 1, "chunk": 1})

    async def insert_first(self, facts: list[Mapping[str, Any]]) -> set[str]:
        """Insert facts of tasks believed new (one insert); the ids refused as known."""
        refused = await insert_new(self.collection, [dict(fact) for fact in facts])
        return {str(facts[position]["_id"]) for position in refused}

    async def put_many(
        self, facts: list[Mapping[str, Any]], *, stored: Mapping[str, Mapping[str, Any]]
    ) -> None:
        """Write each fact newer than its stored one, in one bulk write.

        Only under the user's lock, with `stored` (from `stored`) read under it: nobody else
        writes these facts meanwhile. A guarded filter (`{_id, version: {$lt}}`) would do the
        same in one write, but FerretDB 1.24 uses an index only for a filter that is exactly
        `{_id: <string>}`: the guard scanned every fact of every user, per task. A fact not
        stored is inserted; a refusal (stored after all) goes through `put`.
        """
        todo = [
            fact
            for fact in facts
            if (known := stored.get(str(fact["_id"]))) is None
            or known.get("version", 0) < fact["version"]
        ]
        writes: list[InsertOne[Document] | ReplaceOne[Document]] = [
            InsertOne(dict(fact))
            if str(fact["_id"]) not in stored
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


def chunk_id(owner_id: str, number: int) -> str:
    """A sealed chunk's `_id`: unique per (owner, number), as the number is digits only."""
    return f"{owner_id}/{number}"


@dataclass(frozen=True)
class OpenChunk:
    """A user's open chunk (their document in `owner_stats`) as a batch found it."""

    number: int
    versions: dict[str, int]
    exists: bool


class OwnerStatsTable:
    """Each user's statistics entries, one string per task (`encode_entry`) carrying its
    version, in chunks of a bounded size, so that what one event costs does not grow with
    the user's task count (FerretDB reads and rewrites a whole document for every update).

    - The **open chunk** is the user's document `{_id: owner_id, c: <number>, t: {...}}`:
      entries of tasks first seen while it is open go there.
    - Once it holds `chunk_entries` (a batch of new tasks may take it past that, by at most
      the batch), the next batch **seals** it: its entries are copied to
      `{_id: "<owner_id>/<number>", t: {...}}` in the `sealed` collection, then the open
      document starts empty with the next number. A seal cut short is done again (the copy
      replaced); readers read sealed chunks below the open number only, so none is counted
      twice.
    - Each task's fact records the chunk its entry lives in (`chunk`), so a later event of
      the task reads and rewrites that chunk alone. Documents written before chunks (no `c`,
      facts with no `chunk`) are chunk 0, open.

    Written only under the user's lock, after the versions are read.
    """

    def __init__(
        self,
        collection: AsyncCollection[Document],
        sealed: AsyncCollection[Document],
        *,
        chunk_entries: int = STATS_CHUNK_ENTRIES,
    ) -> None:
        self.collection = collection
        self.sealed = sealed
        self.chunk_entries = chunk_entries

    async def open_chunk(self, owner_id: str) -> OpenChunk:
        """The user's open chunk with its entries' versions, sealed first when full."""
        document = await self.collection.find_one({"_id": owner_id})
        if document is None:
            return OpenChunk(0, {}, exists=False)
        number = int(document.get("c", 0))
        entries = document.get("t", {})
        if len(entries) < self.chunk_entries:
            versions = {key: decode_entry(entry)["v"] for key, entry in entries.items()}
            return OpenChunk(number, versions, exists=True)
        copy = {"_id": chunk_id(owner_id, number), "t": entries}
        try:
            await self.sealed.insert_one(copy)
        except DuplicateKeyError:
            # A seal cut short between the copy and the reset: the copy again, whole.
            await self.sealed.replace_one({"_id": copy["_id"]}, copy)
        await self.collection.replace_one({"_id": owner_id}, {"c": number + 1, "t": {}})
        return OpenChunk(number + 1, {}, exists=True)

    async def sealed_versions(
        self, owner_id: str, keys_by_chunk: Mapping[int, list[str]]
    ) -> dict[str, int]:
        """The stored versions of these entries of sealed chunks (one read per chunk)."""

        async def read(number: int, keys: list[str]) -> dict[str, int]:
            projection = {f"t.{key}": 1 for key in keys}
            document = await self.sealed.find_one({"_id": chunk_id(owner_id, number)}, projection)
            stored = (document or {}).get("t", {})
            return {key: decode_entry(entry)["v"] for key, entry in stored.items()}

        versions: dict[str, int] = {}
        for part in await asyncio.gather(*(read(n, keys) for n, keys in keys_by_chunk.items())):
            versions.update(part)
        return versions

    async def put_many(
        self,
        owner_id: str,
        entries_by_chunk: Mapping[int, Mapping[str, Mapping[str, Any]]],
        opened: OpenChunk,
    ) -> None:
        """Set these entries in their chunks, unguarded: under the user's lock only."""
        for number, entries in entries_by_chunk.items():
            if not entries:
                continue
            encoded = {key: encode_entry(entry) for key, entry in entries.items()}
            change = {"$set": {f"t.{key}": entry for key, entry in encoded.items()}}
            if number != opened.number:
                await self.sealed.update_one(
                    {"_id": chunk_id(owner_id, number)}, change, upsert=True
                )
                continue
            if not opened.exists:
                try:
                    await self.collection.insert_one({"_id": owner_id, "c": number, "t": encoded})
                    continue
                except DuplicateKeyError:
                    pass
            await self.collection.update_one({"_id": owner_id}, change, upsert=True)

    async def entries(self, owner_id: str) -> list[dict[str, Any]]:
        """Every entry of the user: the open chunk and the sealed ones below its number."""
        document = await self.collection.find_one({"_id": owner_id})
        if document is None:
            return []
        sealed = await find_by_ids(
            self.sealed, [chunk_id(owner_id, n) for n in range(int(document.get("c", 0)))]
        )
        return [
            decode_entry(entry)
            for chunk in (document, *sealed.values())
            for entry in chunk.get("t", {}).values()
        ]

    async def forget_owner(self, owner_id: str) -> None:
        """The sealed chunks first (one past the open number: a seal cut short), then the
        open document, so a deletion cut short is found again by the next one."""
        document = await self.collection.find_one({"_id": owner_id}, {"c": 1})
        if document is not None:
            numbers = range(int(document.get("c", 0)) + 1)
            await delete_by_ids(self.sealed, [chunk_id(owner_id, n) for n in numbers])
        await self.collection.delete_one({"_id": owner_id})


@dataclass(frozen=True)
class Generation:
    """The projections of one build, written and read together."""

    suffix: str
    facts: FactsTable
    stats: OwnerStatsTable

    @classmethod
    def of(
        cls,
        db: AsyncDatabase[Document],
        suffix: str,
        *,
        chunk_entries: int = STATS_CHUNK_ENTRIES,
    ) -> Generation:
        stats = OwnerStatsTable(
            db[BASE_STATS + suffix], db[BASE_SEALED + suffix], chunk_entries=chunk_entries
        )
        return cls(suffix, FactsTable(db[BASE_FACTS + suffix]), stats)

    async def create_indexes(self) -> None:
        await self.facts.create_indexes()

    async def drop(self, db: AsyncDatabase[Document]) -> None:
        await db.drop_collection(self.facts.collection.name)
        await db.drop_collection(self.stats.collection.name)
        await db.drop_collection(self.stats.sealed.name)

    async def put_facts(self, owner_id: str, facts: Mapping[str, Mapping[str, Any]]) -> None:
        """Store the newest fact of each of one user's tasks (by `entry_key`) and its
        statistics entry, each only where what is stored is older. Under the user's lock.

        Round trips: the open chunk; the facts of tasks' first events not in it, inserted
        (one insert); the other facts, read by `_id`; the sealed chunks those name, read; the
        facts that change (one bulk write); the entries, one update per chunk. A batch of new
        tasks makes three; an update of a task in the open chunk four (its fact read), in a
        sealed chunk five (that chunk read too).
        """
        opened = await self.stats.open_chunk(owner_id)
        # A task's first event, not in the open chunk: almost always a new task. Its fact is
        # inserted at once, naming the open chunk; a refused insert means the task is known
        # (a redelivery), and it is read like the others below.
        first = {
            key: {**fact, "chunk": opened.number}
            for key, fact in facts.items()
            if key not in opened.versions and fact["version"] == 1
        }
        refused = await self.facts.insert_first(list(first.values()))
        inserted = {key for key, fact in first.items() if str(fact["_id"]) not in refused}
        others = [key for key in facts if key not in inserted]
        stored = await self.facts.stored([str(facts[key]["_id"]) for key in others])

        # Where each entry lives: the open chunk when it is there, else the chunk its fact
        # names; a task without a fact is new, and goes to the open chunk.
        where = dict.fromkeys(inserted, opened.number)
        keys_by_chunk: dict[int, list[str]] = {}
        for key in others:
            known = stored.get(str(facts[key]["_id"]))
            if key in opened.versions or known is None:
                where[key] = opened.number
            else:
                where[key] = int(known.get("chunk", 0))
                if where[key] != opened.number:
                    keys_by_chunk.setdefault(where[key], []).append(key)
        versions = {**opened.versions, **await self.stats.sealed_versions(owner_id, keys_by_chunk)}
        changed = {
            key: fact
            for key, fact in facts.items()
            if supersedes(fact["version"], versions.get(key))
        }
        # Facts first, entries second: a crash between them is repaired by the redelivery
        # (the entries still hold the older versions, so both are written again), and a
        # fact always names its entry's chunk before the entry is there.
        await self.facts.put_many(
            [{**facts[key], "chunk": where[key]} for key in changed if key not in inserted],
            stored=stored,
        )
        entries_by_chunk: dict[int, dict[str, dict[str, Any]]] = {}
        for key, fact in changed.items():
            entries_by_chunk.setdefault(where[key], {})[key] = stats_entry(fact)
        await self.stats.put_many(owner_id, entries_by_chunk, opened)


class ProjectionStore:
    """Where the projections live; the current facts generation is cached briefly.

    The cache keeps one extra read off every event and request; after a rebuild switches
    generations, replicas follow within `pointer_cache_seconds` (the rebuild waits longer
    than that before its catch-up pass).
    """

    def __init__(
        self,
        db: AsyncDatabase[Document],
        *,
        pointer_cache_seconds: float = 1.0,
        chunk_entries: int = STATS_CHUNK_ENTRIES,
    ) -> None:
        self.db = db
        self.chunk_entries = chunk_entries
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
        suffix = str(pointer["suffix"]) if pointer else ""
        generation = Generation.of(self.db, suffix, chunk_entries=self.chunk_entries)
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
