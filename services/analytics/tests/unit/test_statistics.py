from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from analytics_service.domain.errors import InvalidDateRange
from analytics_service.domain.statistics import (
    MAX_TIMELINE_DAYS,
    GroupCount,
    check_range,
    daily_buckets,
    summarize,
)


def test_summary_lists_every_status_and_priority_with_zeros() -> None:
    summary = summarize([])
    assert summary.total == 0
    assert summary.by_status == {"todo": 0, "in_progress": 0, "done": 0}
    assert summary.by_priority == {"low": 0, "medium": 0, "high": 0, "urgent": 0}
    assert summary.completion_rate == 0.0
    assert summary.avg_completion_seconds is None
    assert summary.updated_at is None


def test_summary_derives_rate_and_average_from_counts() -> None:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    summary = summarize(
        [
            GroupCount("done", "high", 2, completion_seconds=100.0, last_change=moment),
            GroupCount("done", "low", 1, completion_seconds=200.0),
            GroupCount("todo", "high", 1, overdue=1, last_change=moment - timedelta(days=1)),
        ]
    )
    assert summary.total == 4
    assert summary.completed == 3
    assert summary.by_priority["high"] == 3
    assert summary.completion_rate == 0.75
    assert summary.avg_completion_seconds == 100.0
    assert summary.overdue == 1
    assert summary.updated_at == moment


def test_tombstones_count_nowhere_but_date_the_last_change() -> None:
    created, deleted = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC)
    summary = summarize(
        [
            GroupCount("todo", "low", 2, last_change=created),
            GroupCount(None, None, 3, last_change=deleted),
        ]
    )
    assert summary.total == 2
    assert summary.by_status == {"todo": 2, "in_progress": 0, "done": 0}
    assert summary.updated_at == deleted


def test_done_tasks_are_never_overdue() -> None:
    summary = summarize(
        [
            GroupCount("done", "low", 1, completion_seconds=5.0, overdue=1),
            GroupCount("todo", "low", 2, overdue=1),
        ]
    )
    assert summary.overdue == 1


def test_timeline_has_one_bucket_per_day_including_empty_days() -> None:
    buckets = daily_buckets(
        date(2026, 2, 27),
        date(2026, 3, 2),
        {"2026-02-28": 2, "2026-03-02": 1, "2026-03-05": 9},
        {"2026-03-01": 1},
    )
    assert [(b.date.isoformat(), b.created, b.completed) for b in buckets] == [
        ("2026-02-27", 0, 0),
        ("2026-02-28", 2, 0),
        ("2026-03-01", 0, 1),
        ("2026-03-02", 1, 0),
    ]


def test_a_single_day_range_is_allowed() -> None:
    assert check_range(date(2026, 1, 1), date(2026, 1, 1)) == 1


def test_a_range_of_366_days_is_allowed_and_367_is_not() -> None:
    start = date(2024, 1, 1)
    assert check_range(start, date(2024, 12, 31)) == MAX_TIMELINE_DAYS
    with pytest.raises(InvalidDateRange, match="367 days"):
        check_range(start, date(2025, 1, 1))


def test_a_reversed_range_is_refused() -> None:
    with pytest.raises(InvalidDateRange, match="after"):
        check_range(date(2026, 1, 2), date(2026, 1, 1))
