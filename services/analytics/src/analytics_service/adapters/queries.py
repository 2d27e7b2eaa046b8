"""The read side: a user's numbers from their statistics chunks, the overview from facts.

A user's summary and timeline come from reads by `_id` (see `adapters.store`). The
admin overview counts over every fact. FerretDB 1.24 computes only the *first* accumulator
of a `$group` correctly (measured: `{n: {$sum: 1}, s: {$sum: "$x"}}` gives `s: 0`), so
every `$group` here has exactly one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from pymongo import DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from taskmesh_common.mongo import Document

from analytics_service.adapters.store import ProjectionStore
from analytics_service.domain.model import DONE
from analytics_service.domain.statistics import (
    DayCount,
    GroupCount,
    Summary,
    count_days,
    daily_buckets,
    summarize,
    summarize_entries,
)

__all__ = ["ACTIVE_DAYS", "Overview", "StatisticsReader"]

# A user is active with a live task, or with any task change in this many days.
ACTIVE_DAYS = 30


@dataclass(frozen=True)
class Overview:
    totals: Summary
    users_with_tasks: int
    active_users: int
    days: list[DayCount]


async def _aggregate(
    collection: AsyncCollection[Document], pipeline: list[dict[str, Any]]
) -> list[Document]:
    cursor = await collection.aggregate(pipeline)
    return await cursor.to_list()


class StatisticsReader:
    def __init__(self, store: ProjectionStore) -> None:
        self.store = store

    # -- one user -----------------------------------------------------------------------

    async def summary(self, owner_id: str, now: datetime) -> Summary:
        stats = (await self.store.current()).stats
        return summarize_entries(await stats.entries(owner_id), now)

    async def timeline(self, owner_id: str, start: date, end: date) -> list[DayCount]:
        stats = (await self.store.current()).stats
        created, completed = count_days(await stats.entries(owner_id), start, end)
        return daily_buckets(start, end, created, completed)

    # -- every user (admin) ---------------------------------------------------------------

    async def _facts(self) -> AsyncCollection[Document]:
        return (await self.store.current()).facts.collection

    async def _totals(self, now: datetime) -> Summary:
        facts = await self._facts()
        live = {"deleted": False}
        groups = await _aggregate(
            facts,
            [
                {"$match": live},
                {"$group": {"_id": {"s": "$status", "p": "$priority"}, "n": {"$sum": 1}}},
            ],
        )
        seconds = await _aggregate(
            facts,
            [
                {"$match": {**live, "status": DONE}},
                {"$group": {"_id": None, "s": {"$sum": "$completion_seconds"}}},
            ],
        )
        overdue = await facts.count_documents(
            {**live, "status": {"$ne": DONE}, "due_date": {"$lt": now}}
        )
        # Tombstones count here: a deletion changes the statistics too.
        latest = await facts.find_one({}, {"changed_at": 1}, sort=[("changed_at", DESCENDING)])
        return summarize(
            [GroupCount(g["_id"]["s"], g["_id"]["p"], int(g["n"])) for g in groups],
            completion_seconds_total=float(seconds[0]["s"]) if seconds else 0.0,
            overdue=overdue,
            updated_at=latest["changed_at"] if latest else None,
        )

    async def _count_by_day(self, field: str, start: date, end: date) -> dict[str, int]:
        rows = await _aggregate(
            await self._facts(),
            [
                {"$match": {field: {"$gte": start.isoformat(), "$lte": end.isoformat()}}},
                {"$group": {"_id": f"${field}", "n": {"$sum": 1}}},
            ],
        )
        return {str(row["_id"]): int(row["n"]) for row in rows}

    async def _count_owners(self, match: dict[str, Any]) -> int:
        rows = await _aggregate(
            await self._facts(),
            [{"$match": match}, {"$group": {"_id": "$owner_id"}}, {"$count": "n"}],
        )
        return int(rows[0]["n"]) if rows else 0

    async def overview(self, now: datetime) -> Overview:
        today = now.date()
        start = today - timedelta(days=ACTIVE_DAYS - 1)
        since = now - timedelta(days=ACTIVE_DAYS)
        # Tombstones and reopened tasks carry no day, so they drop out of the day counts.
        created = await self._count_by_day("created_day", start, today)
        completed = await self._count_by_day("completed_day", start, today)
        return Overview(
            totals=await self._totals(now),
            users_with_tasks=await self._count_owners({"deleted": False}),
            active_users=await self._count_owners(
                {"$or": [{"deleted": False}, {"changed_at": {"$gte": since}}]}
            ),
            days=daily_buckets(start, today, created, completed),
        )
