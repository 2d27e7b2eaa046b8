"""The task model: defaults, changes, and which event each change emits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from taskmesh_common.events.schemas import validate_data
from tasks_service.domain.model import (
    EventType,
    Priority,
    Status,
    apply_changes,
    deleted_event_data,
    new_task,
    to_millis,
)

NOW = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def make_task(**overrides: object):  # type: ignore[no-untyped-def]
    fields: dict[str, object] = {"owner_id": "u1", "title": "Write the report", "now": NOW}
    fields.update(overrides)
    return new_task(**fields)  # type: ignore[arg-type]


def test_new_task_starts_todo_at_version_one_with_millisecond_times() -> None:
    task = make_task(title="  padded  ", tags=["a", " a", "b", ""])
    assert task.status is Status.TODO
    assert task.priority is Priority.MEDIUM
    assert task.version == 1
    assert task.title == "padded"
    assert task.tags == ("a", "b")
    assert task.created_at == task.updated_at == NOW.replace(microsecond=123000)
    assert task.completed_at is None


def test_naive_due_date_is_taken_as_utc() -> None:
    task = make_task(due_date=datetime(2026, 5, 1, 9, 30))
    assert task.due_date == datetime(2026, 5, 1, 9, 30, tzinfo=UTC)


def test_completing_sets_completed_at_and_emits_task_completed() -> None:
    later = NOW + timedelta(hours=1)
    result = apply_changes(make_task(), {"status": "done"}, now=later)
    assert result is not None
    task, event = result
    assert event is EventType.COMPLETED
    assert task.completed_at == to_millis(later)
    assert task.version == 2


def test_leaving_done_clears_completed_at_and_emits_task_reopened() -> None:
    done, _ = apply_changes(make_task(), {"status": "done"}, now=NOW) or (None, None)
    assert done is not None
    result = apply_changes(done, {"status": "in_progress"}, now=NOW + timedelta(minutes=5))
    assert result is not None
    task, event = result
    assert event is EventType.REOPENED
    assert task.completed_at is None
    assert task.version == 3


def test_other_changes_emit_task_updated() -> None:
    result = apply_changes(make_task(), {"status": "in_progress", "priority": "urgent"})
    assert result is not None
    task, event = result
    assert event is EventType.UPDATED
    assert task.priority is Priority.URGENT
    assert task.completed_at is None


def test_editing_a_done_task_keeps_it_done_and_emits_task_updated() -> None:
    done, _ = apply_changes(make_task(), {"status": "done"}, now=NOW) or (None, None)
    assert done is not None
    result = apply_changes(done, {"title": "renamed"}, now=NOW + timedelta(minutes=1))
    assert result is not None
    task, event = result
    assert event is EventType.UPDATED
    assert task.completed_at == done.completed_at


def test_a_change_to_the_same_values_writes_nothing() -> None:
    task = make_task(tags=["x"])
    assert apply_changes(task, {"title": task.title, "tags": ["x", "x"], "status": "todo"}) is None


def test_only_user_fields_can_change() -> None:
    with pytest.raises(ValueError, match="not changeable"):
        apply_changes(make_task(), {"version": 7})


def test_event_data_follows_the_task_state_contract() -> None:
    task = make_task(due_date=NOW, tags=["t"])
    data = validate_data("task.created", task.event_data())
    assert data.model_dump(mode="json")["due_date"] == "2026-03-01T12:00:00.123000Z"


def test_deleted_event_carries_the_next_version() -> None:
    task = make_task()
    data = deleted_event_data(task.id, task.owner_id, task.version, NOW)
    validate_data("task.deleted", data)
    assert data["version"] == task.version + 1


def test_priority_rank_puts_urgent_first() -> None:
    ranked = sorted(Priority, key=lambda p: p.rank)
    assert ranked == [Priority.URGENT, Priority.HIGH, Priority.MEDIUM, Priority.LOW]
