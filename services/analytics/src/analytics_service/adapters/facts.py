"""The `task_facts<suffix>` collection: one document per task, written only by a newer
version, and the counts every statistic is computed from.

A document is a `TaskFact` with the task id as `_id` (`encode_fact`); nothing outside this
module knows its shape. Per-user questions filter on `owner_id` first and the compound
indexes below serve them; the admin overview reads every fact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import date, datetime
from typing import Any

from pymongo import ASCENDING, IndexModel, ReplaceOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError
from taskmesh_common.mongo import Document

from analytics_service.domain.model import DONE, TaskFact
from analytics_service.domain.statistics import GroupCount

__all__ = ["BASE_FACTS", "FACT_INDEXES", "RETIRED_FACT_INDEXES", "FactsTable", "encode_fact"]

BASE_FACTS = "task_facts"
_DUPLICATE_KEY = 11000

FACT_INDEXES = [
    # A user's summary (the prefix), timeline (created), deletion (the prefix).
    IndexModel([("owner_id", ASCENDING), ("created_day", ASCENDING)]),
    # A user's timeline (completed).
    IndexModel([("owner_id", ASCENDING), ("completed_day", ASCENDING)]),
]
# The admin overview's: it reads every fact for its counts anyway, while every event's fact
# write paid each of them (docs/performance.md#index-write-cost). Dropped at start from the
# base generation where an older version made them; a rebuild's new generation never has them.
RETIRED_FACT_INDEXES = ("created_day_1", "completed_day_1", "deleted_1_owner_id_1", "changed_at_-1")


# Every field but the id, in order. Read one by one: `asdict` deep-copies each value, and a
# datetime's copy alone made encoding a fact ~25x dearer (28 against 1.2 us).
_FACT_FIELDS = tuple(f.name for f in fields(TaskFact) if f.name != "task_id")


def encode_fact(fact: TaskFact) -> Document:
    document: Document = {"_id": fact.task_id}
    for name in _FACT_FIELDS:
        document[name] = getattr(fact, name)
    return document


def _group_counts(match: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    """One `$group` per (status, priority) with every number the summary needs."""
    overdue = {
        "$and": [
            {"$ne": ["$status", DONE]},
            {"$gt": ["$due_date", None]},
            {"$lt": ["$due_date", now]},
        ]
    }
    return [
        {"$match": match},
        {
            "$group": {
                "_id": {"s": "$status", "p": "$priority"},
                "n": {"$sum": 1},
                "seconds": {"$sum": "$completion_seconds"},
                "overdue": {"$sum": {"$cond": [overdue, 1, 0]}},
                "at": {"$max": "$changed_at"},
            }
        },
    ]


class FactsTable:
    """One generation of task facts."""

    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self.collection = collection

    async def create_indexes(self) -> None:
        await self.collection.create_indexes(FACT_INDEXES)

    # -- writes -------------------------------------------------------------------------

    async def put_newest(self, facts: Sequence[TaskFact]) -> None:
        """Store each fact unless the stored one is as new or newer (one task each).

        One unordered bulk write of upserts filtered on `{_id, version: {$lt: v}}`: an older
        fact is replaced, a missing one inserted. When the filter matches nothing because
        the stored version is as new or newer, the upsert's insert is refused as a duplicate
        `_id`, which is the answer "nothing to do". A refusal can also mean another replica
        inserted this task a moment ago, maybe an older version; the same guarded replace
        without upsert, once more, settles those.
        """
        refused = await self._write([_guarded(fact, upsert=True) for fact in facts])
        if refused:
            await self._write([_guarded(facts[n], upsert=False) for n in sorted(refused)])

    async def _write(self, operations: list[ReplaceOne[Document]]) -> set[int]:
        """Positions refused as duplicate keys; any other error is raised."""
        if not operations:
            return set()
        try:
            await self.collection.bulk_write(operations, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors") or []
            if exc.details.get("writeConcernErrors") or any(
                error.get("code") != _DUPLICATE_KEY for error in errors
            ):
                raise
            return {int(error["index"]) for error in errors}
        return set()

    async def forget_owner(self, owner_id: str) -> None:
        await self.collection.delete_many({"owner_id": owner_id})

    # -- counts -------------------------------------------------------------------------

    async def group_counts(self, owner_id: str | None, now: datetime) -> list[GroupCount]:
        """Per (status, priority), tombstones included: one user's facts, or everyone's."""
        match = {} if owner_id is None else {"owner_id": owner_id}
        rows = await self._aggregate(_group_counts(match, now))
        return [
            GroupCount(
                status=row["_id"].get("s"),
                priority=row["_id"].get("p"),
                count=int(row["n"]),
                completion_seconds=float(row["seconds"] or 0.0),
                overdue=int(row["overdue"]),
                last_change=row["at"],
            )
            for row in rows
        ]

    async def count_by_day(
        self, field: str, start: date, end: date, owner_id: str | None = None
    ) -> dict[str, int]:
        """Facts per value of `field` (`created_day` or `completed_day`) in [start, end].

        Tombstones and reopened tasks carry no day, so they drop out of these counts.
        """
        match: dict[str, Any] = {} if owner_id is None else {"owner_id": owner_id}
        match[field] = {"$gte": start.isoformat(), "$lte": end.isoformat()}
        rows = await self._aggregate(
            [{"$match": match}, {"$group": {"_id": f"${field}", "n": {"$sum": 1}}}]
        )
        return {str(row["_id"]): int(row["n"]) for row in rows}

    async def count_owners(self, *, changed_since: datetime | None = None) -> int:
        """Users with a live task, or (given `changed_since`) with any change since then."""
        match: dict[str, Any] = {"deleted": False}
        if changed_since is not None:
            match = {"$or": [match, {"changed_at": {"$gte": changed_since}}]}
        rows = await self._aggregate(
            [{"$match": match}, {"$group": {"_id": "$owner_id"}}, {"$count": "n"}]
        )
        return int(rows[0]["n"]) if rows else 0

    async def _aggregate(self, pipeline: list[dict[str, Any]]) -> list[Document]:
        cursor = await self.collection.aggregate(pipeline)
        return await cursor.to_list()


def _guarded(fact: TaskFact, *, upsert: bool) -> ReplaceOne[Document]:
    document = encode_fact(fact)
    guard = {"_id": fact.task_id, "version": {"$lt": fact.version}}
    return ReplaceOne(guard, document, upsert=upsert)
