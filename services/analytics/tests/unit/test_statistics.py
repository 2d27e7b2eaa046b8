from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from analytics_service.domain.errors import InvalidDateRange
from analytics_service.domain.statistics import (
    MAX_TIMELINE_DAYS,
    GroupCount,
    check_range,
    count_days,
    daily_buckets,
    summarize,
    summarize_entries,
)


def test_summary_lists_every_status_and_priority_with_zeros() -> None:
    summary = summarize([], completion_seconds_total=0.0, overdue=0, updated_at=None)
    assert summary.total == 0
    assert summary.by_status == {"todo": 0, "in_progress": 0, "done": 0}
    assert summary.by_priority == {"low": 0, "medium": 0, "high": 0, "urgent": 0}
    assert summary.completion_rate == 0.0
    assert summary.avg_completion_seconds is None


def test_summary_derives_rate_and_average_from_counts() -> None:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    summary = summarize(
        [
            GroupCount("done", "high", 2),
            GroupCount("done", "low", 1),
            GroupCount("todo", "high", 1),
        ],
        completion_seconds_total=300.0,
        overdue=1,
        updated_at=moment,
    )
    assert summary.total == 4
    assert summary.completed == 3
    assert summary.by_priority["high"] == 3
    assert summary.completion_rate == 0.75
    assert summary.avg_completion_seconds == 100.0
    assert summary.overdue == 1
    assert summary.updated_at == moment


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


def entry(**overrides: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "v": 1,
        "s": "todo",
        "p": "low",
        "cd": "2026-03-01",
        "kd": None,
        "cs": None,
        "due": None,
        "at": datetime(2026, 3, 1, tzinfo=UTC),
    }
    fields.update(overrides)
    return fields


NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)


def test_entries_summary_skips_tombstones_but_dates_the_last_change_by_them() -> None:
    deleted_at = datetime(2026, 3, 9, tzinfo=UTC)
    summary = summarize_entries(
        [
            entry(s="done", p="high", kd="2026-03-02", cs=60.0),
            entry(s="done", p="high", kd="2026-03-03", cs=180.0),
            entry(),
            {"v": 4, "x": True, "at": deleted_at},
        ],
        NOW,
    )
    assert summary.total == 3
    assert summary.completed == 2
    assert summary.by_priority == {"low": 1, "medium": 0, "high": 2, "urgent": 0}
    assert summary.avg_completion_seconds == 120.0
    assert summary.updated_at == deleted_at


def test_only_unfinished_tasks_past_their_due_date_are_overdue() -> None:
    past, future = NOW - timedelta(minutes=1), NOW + timedelta(minutes=1)
    summary = summarize_entries(
        [
            entry(due=past),
            entry(due=future),
            entry(s="done", kd="2026-03-02", cs=1.0, due=past),
            entry(),
        ],
        NOW,
    )
    assert summary.overdue == 1


def test_day_counts_use_creation_and_completion_days_within_the_range() -> None:
    created, completed = count_days(
        [
            entry(cd="2026-03-01", kd="2026-03-05", s="done"),
            entry(cd="2026-02-28"),
            entry(cd="2026-03-04"),
            {"v": 2, "x": True, "at": NOW},
        ],
        date(2026, 3, 1),
        date(2026, 3, 4),
    )
    assert created == {"2026-03-01": 1, "2026-03-04": 1}
    assert completed == {}
