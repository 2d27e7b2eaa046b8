"""Pure arithmetic of the answers: summaries from counted groups, timelines from day counts.

The adapters count (`$group` over task facts); totals, rates, averages, zero-filled days and
range rules live here, where they can be tested without I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from analytics_service.domain.errors import InvalidDateRange
from analytics_service.domain.model import DONE, PRIORITIES, STATUSES

__all__ = [
    "MAX_TIMELINE_DAYS",
    "DayCount",
    "GroupCount",
    "Summary",
    "check_range",
    "daily_buckets",
    "summarize",
]

MAX_TIMELINE_DAYS = 366


@dataclass(frozen=True)
class GroupCount:
    """The facts of one status and priority: how many, their completion seconds summed, how
    many are overdue, and their latest change. Tombstones are the group without a status:
    they count nowhere but still date the last change."""

    status: str | None
    priority: str | None
    count: int
    completion_seconds: float = 0.0
    overdue: int = 0
    last_change: datetime | None = None


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


def summarize(groups: Iterable[GroupCount]) -> Summary:
    """Every status and priority appears, zero or not, so clients need no special cases."""
    by_status = dict.fromkeys(STATUSES, 0)
    by_priority = dict.fromkeys(PRIORITIES, 0)
    seconds = 0.0
    overdue = 0
    updated_at: datetime | None = None
    for group in groups:
        if group.last_change is not None:
            updated_at = max(updated_at or group.last_change, group.last_change)
        if group.status is None or group.priority is None:
            continue
        by_status[group.status] = by_status.get(group.status, 0) + group.count
        by_priority[group.priority] = by_priority.get(group.priority, 0) + group.count
        if group.status == DONE:
            seconds += group.completion_seconds
        else:
            overdue += group.overdue
    total = sum(by_status.values())
    completed = by_status[DONE]
    return Summary(
        total=total,
        by_status=by_status,
        by_priority=by_priority,
        completed=completed,
        completion_rate=round(completed / total, 4) if total else 0.0,
        avg_completion_seconds=round(seconds / completed, 3) if completed else None,
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
