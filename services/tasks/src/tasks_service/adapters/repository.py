"""Tasks in MongoDB (PyMongo async), each write carrying its event in the same document write.

Every insert/update puts the event in the document's ``_outbox`` array in the same
single-document operation (a single-document write is atomic on every MongoDB-compatible
server, and none we run has multi-document transactions), so a change never exists without
its event. A delete leaves a tombstone (``_deleted: true``) holding ``task.deleted`` until
the relay has published it. Every read of live data filters tombstones out.

Guarded writes are one conditional ``update_one`` whose filter holds the owner, the
expected version and "not deleted": of racing writers exactly one matches.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import WriteError
from taskmesh_common.batching import GroupCommit
from taskmesh_common.events import DELETED_FIELD, OUTBOX_FIELD, outbox_entry
from taskmesh_common.mongo import Document, Inserted, insert_each

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
)

__all__ = [
    "COLLECTION",
    "SOURCE",
    "TaskRepository",
    "task_indexes",
]

COLLECTION = "tasks"
SOURCE = "taskmesh/tasks"
_LIVE: Document = {DELETED_FIELD: {"$ne": True}}

# Reads never need the pending events.
_NO_OUTBOX: Document = {OUTBOX_FIELD: False}
_FIELDS = {
    SortKey.CREATED_AT: "created_at",
    SortKey.DUE: "due_sort",
    SortKey.PRIORITY_RANK: "priority_rank",
    SortKey.ID: "_id",
}


def task_indexes() -> list[IndexModel]:
    """One compound index per sort order (see `domain.listing.SORT_KEYS`), each starting with
    the owner and ending with the page's sort key: a page reads only its owner's entries, in
    order, however many tasks other users have. Filters (status, priority, tag, text, due
    range) are checked on those entries rather than given indexes of their own: each index is
    paid on every write of a task, its outbox's included (docs/performance.md#index-write-cost),
    and a filter then reads no more than that owner's own tasks."""
    owner = ("owner_id", ASCENDING)
    newest = [("created_at", DESCENDING), ("_id", DESCENDING)]
    return [
        IndexModel([owner, *newest], name="owner_created"),
        IndexModel([owner, ("due_sort", ASCENDING), ("_id", ASCENDING)], name="owner_due_sort"),
        IndexModel([owner, ("priority_rank", ASCENDING), *newest], name="owner_priority_rank"),
    ]


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


def _list_query(flt: TaskFilter, order: SortOrder, after: list[Any] | None = None) -> Document:
    """The filter of one page of `flt`, strictly after the sort key `after`."""
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
    clauses = [query]
    if flt.q:
        # Literal text, never a pattern: a user's "a.*" must not match everything.
        pattern = {"$regex": re.escape(flt.q), "$options": "i"}
        clauses.append({"$or": [{"title": pattern}, {"description": pattern}]})
    if after is not None:
        clauses.append(_after(order, after))
    return query if len(clauses) == 1 else {"$and": clauses}


def _list_sort(order: SortOrder) -> list[tuple[str, int]]:
    return [(_FIELDS[key], direction) for key, direction in SORT_KEYS[order]]


class TaskRepository:
    """Tasks of every owner; callers pass the owner so isolation is in every query.

    New tasks that arrive while one is being written are inserted together next
    (:class:`~taskmesh_common.batching.GroupCommit`): one ``insert_many`` for a burst of
    creates instead of a round trip each.
    """

    def __init__(
        self,
        collection: AsyncCollection[Document],
        *,
        on_write: Callable[[str], None] | None = None,
    ) -> None:
        self.collection = collection
        # Called with a task's id after a write that added an event to it (and, after an
        # insert, the new document's whole outbox): wakes the outbox relay
        # (`OutboxRelay.wrote`) so the event goes out now, without a claim on the document.
        self._on_write = on_write or (lambda _task_id: None)
        self._inserts: GroupCommit[str, Document, Inserted] = GroupCommit(
            lambda _, docs: insert_each(self.collection, docs)
        )

    async def close(self) -> None:
        """Stop the batches of inserts (their callers get an error)."""
        await self._inserts.close()

    async def add(self, task: Task) -> bool:
        """Insert a task with its task.created event; False if its id exists already."""
        doc = _to_document(task)
        doc[OUTBOX_FIELD] = [_event(EventType.CREATED, task.id, task.event_data(), task.created_at)]
        inserted = await self._inserts.submit(self.collection.name, doc)
        if isinstance(inserted, WriteError):
            raise inserted
        if inserted:
            self._on_write(task.id)
        return inserted

    async def get(self, task_id: str, owner_id: str | None) -> Task | None:
        """A live task; `owner_id=None` reads any owner's (admins only, decided by the caller)."""
        query: Document = {"_id": task_id, **_LIVE}
        if owner_id is not None:
            query["owner_id"] = owner_id
        doc = await self.collection.find_one(query, projection=_NO_OUTBOX)
        return None if doc is None else _to_task(doc)

    async def get_any(self, task_id: str) -> tuple[Task, bool] | None:
        """A task, live or a tombstone, and whether it is deleted."""
        doc = await self.collection.find_one({"_id": task_id}, projection=_NO_OUTBOX)
        return None if doc is None else (_to_task(doc), doc.get(DELETED_FIELD) is True)

    async def list(
        self, flt: TaskFilter, order: SortOrder, limit: int, after: list[Any] | None = None
    ) -> tuple[list[Task], bool]:
        """One page in `order`, strictly after the key `after`; and whether more follow."""
        cursor = (
            self.collection.find(_list_query(flt, order, after), projection=_NO_OUTBOX)
            .sort(_list_sort(order))
            .limit(limit + 1)
        )
        docs = await cursor.to_list(length=limit + 1)
        return [_to_task(d) for d in docs[:limit]], len(docs) > limit

    async def _write_version(
        self, task_id: str, owner_id: str, version: int, update: Document
    ) -> bool:
        """Apply `update` only to the owner's live task at `version`; False when none is."""
        result = await self.collection.update_one(
            {"_id": task_id, "owner_id": owner_id, "version": version, **_LIVE}, update
        )
        if result.matched_count == 0:
            return False
        self._on_write(task_id)
        return True

    async def replace(self, before: Task, after: Task, event: EventType) -> bool:
        """Write `after` (version + 1) if the stored task is still `before`'s version."""
        doc = _to_document(after)
        del doc["_id"]
        entry = _event(event, after.id, after.event_data(), after.updated_at)
        return await self._write_version(
            before.id,
            before.owner_id,
            before.version,
            {"$set": doc, "$push": {OUTBOX_FIELD: entry}},
        )

    async def delete(self, task_id: str, owner_id: str, version: int, now: datetime) -> bool:
        """Tombstone the owner's task if still at `version`, with its task.deleted event."""
        data = deleted_event_data(task_id, owner_id, version, now)
        return await self._write_version(
            task_id,
            owner_id,
            version,
            {
                "$set": {DELETED_FIELD: True, "version": version + 1, "deleted_at": now},
                "$push": {OUTBOX_FIELD: _event(EventType.DELETED, task_id, data, now)},
            },
        )

    async def remove_owner(self, owner_id: str, now: datetime) -> None:
        """Remove every task of a deleted user, keeping events already recorded.

        Every live task becomes a tombstone; those with nothing left to publish are deleted
        now, and the relay removes the others once their pending events are out. Idempotent.
        """
        await self.collection.update_many(
            {"owner_id": owner_id, **_LIVE}, {"$set": {DELETED_FIELD: True, "deleted_at": now}}
        )
        await self.collection.delete_many(
            {"owner_id": owner_id, DELETED_FIELD: True, f"{OUTBOX_FIELD}.0": {"$exists": False}}
        )
