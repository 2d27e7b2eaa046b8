"""Pure arithmetic of the answers: summaries from counted groups, timelines from day counts.

The adapters only count (FerretDB's `$group` has nothing but `$sum`/`$count`); averages,
rates, zero-filled days and range rules live here, where they can be tested without I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from analytics_service.domain.errors import InvalidDateRange
from analytics_service.domain.model import DONE, PRIORITIES, STATUSES, as_utc

__all__ = [
    "MAX_TIMELINE_DAYS",
    "DayCount",
    "GroupCount",
    "Summary",
    "check_range",
    "count_days",
    "daily_buckets",
    "summarize",
    "summarize_entries",
]

MAX_TIMELINE_DAYS = 366


@dataclass(frozen=True)
class GroupCount:
    """How many live tasks have this status and priority."""

    status: str
    priority: str
    count: int


@dataclass(frozen=True)
class Summary:
    total: int
    by_status: dict[str, int]
    by_priority: dict[str, int]
    completed: int
    completion_rate: float
    avg_completion_seconds: float | None
    overdue: int
    updated_at: datetime | None


@dataclass(frozen=True)
class DayCount:
    date: date
    created: int = 0
    completed: int = 0


def summarize(
    groups: Iterable[GroupCount],
    *,
    completion_seconds_total: float,
    overdue: int,
    updated_at: datetime | None,
) -> Summary:
    """Every status and priority appears, zero or not, so clients need no special cases."""
    by_status = dict.fromkeys(STATUSES, 0)
    by_priority = dict.fromkeys(PRIORITIES, 0)
    for group in groups:
        by_status[group.status] = by_status.get(group.status, 0) + group.count
        by_priority[group.priority] = by_priority.get(group.priority, 0) + group.count
    total = sum(by_status.values())
    completed = by_status[DONE]
    return Summary(
        total=total,
        by_status=by_status,
        by_priority=by_priority,
        completed=completed,
        completion_rate=round(completed / total, 4) if total else 0.0,
        avg_completion_seconds=(
            round(completion_seconds_total / completed, 3) if completed else None
        ),
        overdue=overdue,
        updated_at=updated_at,
    )


def check_range(start: date, end: date) -> int:
    """The number of days in [start, end]; reversed or over-long ranges are refused."""
    if end < start:
        raise InvalidDateRange(f"'from' ({start}) is after 'to' ({end})")
    days = (end - start).days + 1
    if days > MAX_TIMELINE_DAYS:
        raise InvalidDateRange(
            f"the range covers {days} days; at most {MAX_TIMELINE_DAYS} are allowed"
        )
    return days


def daily_buckets(
    start: date, end: date, created: Mapping[str, int], completed: Mapping[str, int]
) -> list[DayCount]:
    """One bucket per day of [start, end], zeros included; days outside are ignored."""
    days = check_range(start, end)
    buckets = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        key = day.isoformat()
        buckets.append(
            DayCount(date=day, created=created.get(key, 0), completed=completed.get(key, 0))
        )
    return buckets


def summarize_entries(entries: Iterable[Mapping[str, Any]], now: datetime) -> Summary:
    """A user's summary from the entries of their statistics (see `stats_entry`).

    Tombstones (`x`) count nowhere but still date the last change.
    """
    groups: Counter[tuple[str, str]] = Counter()
    seconds = 0.0
    overdue = 0
    updated_at: datetime | None = None
    for entry in entries:
        changed = as_utc(entry["at"])
        updated_at = changed if updated_at is None else max(updated_at, changed)
        if entry.get("x"):
            continue
        groups[(entry["s"], entry["p"])] += 1
        if entry["s"] == DONE:
            seconds += float(entry["cs"] or 0.0)
        elif entry["due"] is not None and as_utc(entry["due"]) < now:
            overdue += 1
    return summarize(
        [GroupCount(status, priority, n) for (status, priority), n in groups.items()],
        completion_seconds_total=seconds,
        overdue=overdue,
        updated_at=updated_at,
    )


def count_days(
    entries: Iterable[Mapping[str, Any]], start: date, end: date
) -> tuple[dict[str, int], dict[str, int]]:
    """Created and completed counts per day (`YYYY-MM-DD`) within [start, end]."""
    first, last = start.isoformat(), end.isoformat()
    created: Counter[str] = Counter()
    completed: Counter[str] = Counter()
    for entry in entries:
        if entry.get("x"):
            continue
        if first <= entry["cd"] <= last:
            created[entry["cd"]] += 1
        if entry["kd"] is not None and first <= entry["kd"] <= last:
            completed[entry["kd"]] += 1
    return dict(created), dict(completed)
