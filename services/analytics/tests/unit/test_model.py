from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from analytics_service.domain.model import (
    TaskRemoval,
    TaskSnapshot,
    day_of,
    fact_from_removal,
    fact_from_snapshot,
    newest_facts,
    supersedes,
)

CREATED = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)


def make_snapshot(**overrides: object) -> TaskSnapshot:
    fields: dict[str, object] = {
        "task_id": "t1",
        "owner_id": "u1",
        "version": 1,
        "status": "todo",
        "priority": "medium",
        "due_date": None,
        "created_at": CREATED,
        "updated_at": CREATED,
        "completed_at": None,
    }
    fields.update(overrides)
    return TaskSnapshot(**fields)  # type: ignore[arg-type]


def test_only_a_strictly_newer_version_supersedes_a_fact() -> None:
    assert supersedes(1, None)
    assert supersedes(3, 2)
    assert not supersedes(2, 2)
    assert not supersedes(1, 2)


def test_days_are_utc_days_whatever_the_offset_of_the_moment() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert day_of(datetime(2026, 3, 2, 1, 0, tzinfo=plus_two)) == "2026-03-01"
    assert day_of(datetime(2026, 3, 2, 1, 0)) == "2026-03-02"


def test_a_done_task_counts_its_completion_day_and_duration() -> None:
    done_at = CREATED + timedelta(hours=1)
    fact = fact_from_snapshot(make_snapshot(status="done", completed_at=done_at, version=2))
    assert fact.created_day == "2026-03-01"
    assert fact.completed_day == "2026-03-02"
    assert fact.completion_seconds == 3600.0
    assert fact.deleted is False


def test_a_reopened_task_carries_no_completion() -> None:
    fact = fact_from_snapshot(make_snapshot(status="in_progress", completed_at=None, version=3))
    assert fact.completed_day is None
    assert fact.completion_seconds is None


def test_a_done_task_without_completed_at_falls_back_to_its_update_time() -> None:
    updated = CREATED + timedelta(days=2)
    fact = fact_from_snapshot(make_snapshot(status="done", updated_at=updated))
    assert fact.completed_day == "2026-03-03"


def test_a_tombstone_counts_nowhere_but_keeps_the_version() -> None:
    deleted_at = CREATED + timedelta(days=1)
    fact = fact_from_removal(TaskRemoval("t1", "u1", 7, deleted_at))
    assert fact.version == 7
    assert fact.deleted is True
    assert fact.created_day is None and fact.completed_day is None
    assert fact.changed_at == deleted_at


def test_a_batch_keeps_the_newest_fact_of_each_task_whatever_the_order() -> None:
    snapshots = [
        make_snapshot(version=2, status="done", completed_at=CREATED),
        make_snapshot(version=1),
        make_snapshot(task_id="t2", version=1),
        make_snapshot(version=3, status="todo"),
        make_snapshot(version=3, status="in_progress"),
    ]
    newest = newest_facts(fact_from_snapshot(s) for s in snapshots)
    assert [(f.task_id, f.version, f.status) for f in newest] == [
        ("t1", 3, "todo"),
        ("t2", 1, "todo"),
    ]
