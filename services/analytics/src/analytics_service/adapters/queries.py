"""The read side: summaries, timelines and the overview, counted over the current facts.

Every answer is a `$group` over the facts (see `FactsTable`), so the numbers are whatever
the facts say now: there are no counters that a crash or a redelivery could leave behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from analytics_service.adapters.facts import FactsTable
from analytics_service.adapters.store import ProjectionStore
from analytics_service.domain.statistics import DayCount, Summary, daily_buckets, summarize

__all__ = ["ACTIVE_DAYS", "Overview", "StatisticsReader"]

# A user is active with a live task, or with any task change in this many days.
ACTIVE_DAYS = 30


@dataclass(frozen=True)
class Overview:
    totals: Summary
    users_with_tasks: int
    active_users: int
    days: list[DayCount]


class StatisticsReader:
    def __init__(self, store: ProjectionStore) -> None:
        self.store = store

    async def _facts(self) -> FactsTable:
        return (await self.store.current()).facts

    async def summary(self, owner_id: str, now: datetime) -> Summary:
        facts = await self._facts()
        return summarize(await facts.group_counts(owner_id, now))

    async def timeline(self, owner_id: str, start: date, end: date) -> list[DayCount]:
        facts = await self._facts()
        created = await facts.count_by_day("created_day", start, end, owner_id)
        completed = await facts.count_by_day("completed_day", start, end, owner_id)
        return daily_buckets(start, end, created, completed)

    async def overview(self, now: datetime) -> Overview:
        """Over every user's facts (admin only)."""
        facts = await self._facts()
        today = now.date()
        start = today - timedelta(days=ACTIVE_DAYS - 1)
        created = await facts.count_by_day("created_day", start, today)
        completed = await facts.count_by_day("completed_day", start, today)
        return Overview(
            totals=summarize(await facts.group_counts(None, now)),
            users_with_tasks=await facts.count_owners(),
            active_users=await facts.count_owners(changed_since=now - timedelta(days=ACTIVE_DAYS)),
            days=daily_buckets(start, today, created, completed),
        )
