"""Tasks in MongoDB (PyMongo async), each write carrying its event in the same document write.

Every insert/update puts the event in the document's ``_outbox`` array in the same
single-document operation (FerretDB has no multi-document transactions, and a single
document write is atomic everywhere), so a change never exists without its event. A
delete leaves a tombstone (``_deleted: true``) holding ``task.deleted`` until the relay
has published it. Every read of live data filters tombstones out.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, WriteError
from taskmesh_common.batching import GroupCommit
from taskmesh_common.events import DELETED_FIELD, OUTBOX_FIELD, outbox_entry
from taskmesh_common.locks import DocumentLocks, LockTimeout
from taskmesh_common.mongo import DUPLICATE_KEY, Document, Inserted, insert_each

from tasks_service.domain.errors import (
    IdempotencyKeyGone,
    IdempotencyKeyReused,
    TaskBusy,
    TaskNotFound,
    VersionConflict,
)
from tasks_service.domain.listing import (
    NO_DUE_DATE,
    SORT_KEYS,
    SortKey,
    SortOrder,
    TaskFilter,
)
from tasks_service.domain.model import (
    EventType,
    Priority,
    Status,
    Task,
    deleted_event_data,
    utcnow,
)

__all__ = [
    "COLLECTION",
    "LOCKS_COLLECTION",
    "SOURCE",
    "TaskRepository",
    "task_indexes",
    "task_locks",
]

COLLECTION = "tasks"
LOCKS_COLLECTION = "task_write_locks"
SOURCE = "taskmesh/tasks"
_LIVE: Document = {DELETED_FIELD: {"$ne": True}}


def _is_live(doc: Document) -> bool:
    """`_LIVE`, checked on a document read by `_id`."""
    return doc.get(DELETED_FIELD) is not True


# Reads never need the pending events.
_NO_OUTBOX: Document = {OUTBOX_FIELD: False}
_FIELDS = {
    SortKey.CREATED_AT: "created_at",
    SortKey.DUE: "due_sort",
    SortKey.PRIORITY_RANK: "priority_rank",
    SortKey.ID: "_id",
}


def task_locks(db: AsyncDatabase[Document]) -> DocumentLocks:
    """One writer per task document: the API, the user.deleted consumer and the outbox relay
    (``OutboxRelay(locks={COLLECTION: ...})``) all write under it, because conditional
    updates are not atomic on FerretDB (see :mod:`taskmesh_common.locks`). With it, the
    version check in an update's filter is exact."""
    # Racing writers on one task queue behind the lock; under load twenty of them can take
    # seconds, and giving up early would answer 503 where 412 (lost the race) is the truth.
    return DocumentLocks(db[LOCKS_COLLECTION], wait_seconds=10.0)


def task_indexes() -> list[IndexModel]:
    """Every list filter and sort is served by an index that starts with the owner."""
    owner = ("owner_id", ASCENDING)
    newest = [("created_at", DESCENDING), ("_id", DESCENDING)]
    return [
        IndexModel([owner, *newest], name="owner_created"),
        IndexModel([owner, ("due_sort", ASCENDING), ("_id", ASCENDING)], name="owner_due_sort"),
        IndexModel([owner, ("priority_rank", ASCENDING), *newest], name="owner_priority_rank"),
        IndexModel([owner, ("status", ASCENDING), *newest], name="owner_status"),
        IndexModel([owner, ("priority", ASCENDING), *newest], name="owner_priority"),
        IndexModel([owner, ("tags", ASCENDING), *newest], name="owner_tags"),
        IndexModel([owner, ("due_date", ASCENDING)], name="owner_due_date"),
        # Always present (the task id when no Idempotency-Key was sent), so it is unique on
        # MongoDB too, where a missing field would be indexed as null and collide.
        IndexModel([("idem", ASCENDING)], name="idempotency_key", unique=True),
    ]


def idempotency_ref(owner_id: str, key: str) -> str:
    # Hashed: fixed size, no separator ambiguity, and the client's key is not stored as is.
    return hashlib.sha256(f"{owner_id}\x00{key}".encode()).hexdigest()


def _to_document(task: Task) -> Document:
    return {
        "_id": task.id,
        "owner_id": task.owner_id,
        "title": task.title,
        "description": task.description,
        "status": task.status.value,
        "priority": task.priority.value,
        "priority_rank": task.priority.rank,
        "due_date": task.due_date,
        "due_sort": task.due_date or NO_DUE_DATE,
        "tags": list(task.tags),
        "version": task.version,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
        "completed_at": task.completed_at,
    }


def _to_task(doc: Document) -> Task:
    return Task(
        id=doc["_id"],
        owner_id=doc["owner_id"],
        title=doc["title"],
        description=doc.get("description", ""),
        status=Status(doc["status"]),
        priority=Priority(doc["priority"]),
        due_date=doc.get("due_date"),
        tags=tuple(doc.get("tags", ())),
        version=doc["version"],
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
        completed_at=doc.get("completed_at"),
    )


def _event(event_type: EventType, task_id: str, data: dict[str, Any], time: datetime) -> Document:
    return outbox_entry(event_type.value, task_id, data, source=SOURCE, time=time)


def _after(order: SortOrder, values: list[Any]) -> Document:
    """Tasks strictly after a sort key: (k0 > v0) or (k0 = v0 and k1 > v1) or ..."""
    branches: list[Document] = []
    keys = SORT_KEYS[order]
    for i, (key, direction) in enumerate(keys):
        branch: Document = {_FIELDS[k]: values[j] for j, (k, _) in enumerate(keys[:i])}
        branch[_FIELDS[key]] = {"$gt" if direction == 1 else "$lt": values[i]}
        branches.append(branch)
    return {"$or": branches}


def _list_query(flt: TaskFilter) -> Document:
    query: Document = {"owner_id": flt.owner_id, **_LIVE}
    if flt.status is not None:
        query["status"] = flt.status.value
    if flt.priority is not None:
        query["priority"] = flt.priority.value
    if flt.tag is not None:
        query["tags"] = flt.tag
    due: Document = {}
    if flt.due_before is not None:
        due["$lt"] = flt.due_before
    if flt.due_after is not None:
        due["$gt"] = flt.due_after
    if due:
        query["due_date"] = due
    if flt.q:
        # Literal text, never a pattern: a user's "a.*" must not match everything.
        pattern = {"$regex": re.escape(flt.q), "$options": "i"}
        query["$or"] = [{"title": pattern}, {"description": pattern}]
    return query


class TaskRepository:
    """Tasks of every owner; callers pass the owner so isolation is in every query.

    New tasks that arrive while one is being written are inserted together next
    (:class:`~taskmesh_common.batching.GroupCommit`): one ``insert_many`` for a burst of
    creates instead of a round trip, and a turn at FerretDB's one SQLite writer, each.
    """

    def __init__(
        self,
        collection: AsyncCollection[Document],
        *,
        on_write: Callable[..., None] | None = None,
        locks: DocumentLocks | None = None,
    ) -> None:
        self.collection = collection
        self.locks = locks or task_locks(collection.database)
        # Called with a task's id after a write that added an event to it (and, after an
        # insert, the new document's whole outbox): wakes the outbox relay
        # (`OutboxRelay.kick`) so the event goes out now, without reading the document.
        self._on_write = on_write or (lambda *_: None)
        self._inserts: GroupCommit[str, Document, Inserted] = GroupCommit(
            lambda _, docs: insert_each(self.collection, docs)
        )

    async def close(self) -> None:
        """Stop the batches of inserts (their callers get an error)."""
        await self._inserts.close()

    @contextlib.asynccontextmanager
    async def _locked(self, task_id: str) -> AsyncIterator[None]:
        try:
            async with self.locks.holding(task_id):
                yield
        except LockTimeout:
            raise TaskBusy(task_id) from None

    async def add(
        self, task: Task, *, idempotency_key: str | None = None, request_hash: str | None = None
    ) -> tuple[Task, bool]:
        """Insert a task with its task.created event; (task, False) replays an earlier key."""
        doc = _to_document(task)
        doc["idem"] = (
            task.id if idempotency_key is None else idempotency_ref(task.owner_id, idempotency_key)
        )
        doc["idem_hash"] = request_hash
        doc[OUTBOX_FIELD] = [_event(EventType.CREATED, task.id, task.event_data(), task.created_at)]
        inserted = await self._inserts.submit(self.collection.name, doc)
        if isinstance(inserted, WriteError):
            raise inserted
        if not inserted:
            if idempotency_key is None:
                raise DuplicateKeyError(f"task {task.id} exists already", DUPLICATE_KEY)
            return await self._replay(doc["idem"], request_hash), False
        self._on_write(task.id, doc[OUTBOX_FIELD])
        return task, True

    async def _replay(self, idem: str, request_hash: str | None) -> Task:
        existing = await self.collection.find_one({"idem": idem})
        if existing is None or existing.get(DELETED_FIELD):
            raise IdempotencyKeyGone()
        if existing.get("idem_hash") != request_hash:
            raise IdempotencyKeyReused()
        return _to_task(existing)

    async def get(self, task_id: str, owner_id: str | None) -> Task:
        """A live task; `owner_id=None` reads any owner's (admins only, decided by the caller)."""
        # By `_id` alone, the rest checked here: FerretDB 1.24 uses an index only for a
        # filter that is exactly `{_id: <string>}`; `{_id, owner_id}` would scan every task.
        doc = await self.collection.find_one({"_id": task_id}, projection=_NO_OUTBOX)
        if doc is None or not _is_live(doc) or owner_id not in (None, doc.get("owner_id")):
            raise TaskNotFound(task_id)
        return _to_task(doc)

    async def list(
        self, flt: TaskFilter, order: SortOrder, limit: int, after: list[Any] | None = None
    ) -> tuple[list[Task], bool]:
        """One page in `order`, strictly after the key `after`; and whether more follow."""
        query = _list_query(flt)
        if after is not None:
            query = {"$and": [query, _after(order, after)]}
        sort = [(_FIELDS[key], direction) for key, direction in SORT_KEYS[order]]
        cursor = self.collection.find(query, projection=_NO_OUTBOX).sort(sort).limit(limit + 1)
        docs = await cursor.to_list(length=limit + 1)
        return [_to_task(d) for d in docs[:limit]], len(docs) > limit

    async def _write_next_version(self, task: Task, update: Document) -> None:
        """Apply `update` to `task` only if it is still at `task.version`; one racer wins."""
        async with self._locked(task.id):
            # Read, check and write under the task's lock (every writer of a task holds it),
            # each by `_id` alone: the one filter FerretDB 1.24 answers from an index.
            stored = await self.collection.find_one(
                {"_id": task.id}, projection={"owner_id": 1, "version": 1, DELETED_FIELD: 1}
            )
            if (
                stored is None
                or not _is_live(stored)
                or stored.get("owner_id") != task.owner_id
                or stored.get("version") != task.version
            ):
                raise VersionConflict(task.id)
            await self.collection.update_one({"_id": task.id}, update)
        self._on_write(task.id)

    async def replace(self, before: Task, after: Task, event: EventType) -> Task:
        """Write `after` (version + 1) only if the stored task is still `before`'s version."""
        doc = _to_document(after)
        del doc["_id"]
        entry = _event(event, after.id, after.event_data(), after.updated_at)
        await self._write_next_version(before, {"$set": doc, "$push": {OUTBOX_FIELD: entry}})
        return after

    async def delete(self, task: Task) -> None:
        """Tombstone `task` (if still at its version) with its task.deleted event."""
        now = utcnow()
        entry = _event(EventType.DELETED, task.id, deleted_event_data(task, now), now)
        await self._write_next_version(
            task,
            {
                "$set": {DELETED_FIELD: True, "version": task.version + 1, "deleted_at": now},
                "$push": {OUTBOX_FIELD: entry},
            },
        )

    async def remove_owner(self, owner_id: str) -> int:
        """Remove every task of a deleted user, keeping events already recorded.

        Tasks still holding unpublished events become tombstones that the relay removes once
        it has published them; the others are deleted now. One task at a time, under its
        write lock, like every other write (see `task_locks`). Idempotent.
        """
        live: Document = {"owner_id": owner_id, **_LIVE}
        ids = [doc["_id"] async for doc in self.collection.find(live, projection={"_id": 1})]
        for task_id in ids:
            async with self._locked(task_id):
                await self.collection.update_one(
                    {"_id": task_id, **live},
                    {"$set": {DELETED_FIELD: True, "deleted_at": utcnow()}},
                )
                await self.collection.delete_one(
                    {"_id": task_id, DELETED_FIELD: True, f"{OUTBOX_FIELD}.0": {"$exists": False}}
                )
        return len(ids)
