"""Tasks, their statuses and priorities, and which event each change emits.

Pure Python: no FastAPI, no PyMongo. Times are timezone-aware UTC, truncated to
milliseconds because that is what MongoDB stores (so what we return on a write is
what a later read returns).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "MAX_DESCRIPTION",
    "MAX_TAGS",
    "MAX_TAG_LENGTH",
    "MAX_TITLE",
    "EventType",
    "Priority",
    "Status",
    "Task",
    "apply_changes",
    "change_event",
    "deleted_event_data",
    "new_task",
    "normalize_tags",
    "to_millis",
    "utcnow",
]

MAX_TITLE = 200
MAX_DESCRIPTION = 10_000
MAX_TAGS = 20
MAX_TAG_LENGTH = 50

# Fields a PATCH may change; anything else (id, owner, version, timestamps) is ours.
CHANGEABLE = frozenset({"title", "description", "status", "priority", "due_date", "tags"})


class Status(StrEnum):
    TODO = "todo"
    IN_PROGRESS = "in_progress"
    DONE = "done"


class Priority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    URGENT = "urgent"

    @property
    def rank(self) -> int:
        """Sort position: `sort=priority` lists the most pressing first."""
        return _PRIORITY_RANK[self]


_PRIORITY_RANK = {Priority.URGENT: 0, Priority.HIGH: 1, Priority.MEDIUM: 2, Priority.LOW: 3}


class EventType(StrEnum):
    CREATED = "task.created"
    UPDATED = "task.updated"
    COMPLETED = "task.completed"
    REOPENED = "task.reopened"
    DELETED = "task.deleted"


def to_millis(value: datetime) -> datetime:
    """UTC, millisecond precision; a naive datetime is taken to be UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def utcnow() -> datetime:
    return to_millis(datetime.now(UTC))


def normalize_tags(tags: Sequence[str]) -> list[str]:
    """Trimmed, without duplicates, in the order given (validation of counts is the caller's)."""
    seen: dict[str, None] = {}
    for tag in tags:
        cleaned = tag.strip()
        if cleaned:
            seen.setdefault(cleaned, None)
    return list(seen)


@dataclass(frozen=True, slots=True)
class Task:
    id: str
    owner_id: str
    title: str
    description: str
    status: Status
    priority: Priority
    due_date: datetime | None
    tags: tuple[str, ...]
    version: int
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None

    def event_data(self) -> dict[str, Any]:
        """The `data` of task.created/updated/completed/reopened: the state after the write."""
        return {
            "task_id": self.id,
            "owner_id": self.owner_id,
            "version": self.version,
            "title": self.title,
            "status": self.status.value,
            "priority": self.priority.value,
            "due_date": _iso(self.due_date),
            "tags": list(self.tags),
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "completed_at": _iso(self.completed_at),
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def new_task(
    *,
    owner_id: str,
    title: str,
    description: str = "",
    priority: Priority = Priority.MEDIUM,
    due_date: datetime | None = None,
    tags: Sequence[str] = (),
    now: datetime | None = None,
    task_id: str | None = None,
) -> Task:
    now = to_millis(now) if now is not None else utcnow()
    return Task(
        id=task_id or str(uuid.uuid4()),
        owner_id=owner_id,
        title=title.strip(),
        description=description,
        status=Status.TODO,
        priority=priority,
        due_date=None if due_date is None else to_millis(due_date),
        tags=tuple(normalize_tags(tags)),
        version=1,
        created_at=now,
        updated_at=now,
        completed_at=None,
    )


def change_event(before: Task, after: Task) -> EventType:
    """Which event a write emits: completing and reopening are worth their own names."""
    if after.status is Status.DONE and before.status is not Status.DONE:
        return EventType.COMPLETED
    if before.status is Status.DONE and after.status is not Status.DONE:
        return EventType.REOPENED
    return EventType.UPDATED


def apply_changes(
    task: Task, changes: Mapping[str, Any], *, now: datetime | None = None
) -> tuple[Task, EventType] | None:
    """The task after a partial update, and its event; None when nothing would change.

    Every status may move to every other one; `completed_at` is set when a task becomes
    done and cleared when it leaves done. A no-op PATCH writes nothing and bumps no version.
    """
    unknown = set(changes) - CHANGEABLE
    if unknown:
        raise ValueError(f"not changeable: {sorted(unknown)}")
    values: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "title":
            value = value.strip()
        elif name == "tags":
            value = tuple(normalize_tags(value))
        elif name == "due_date" and value is not None:
            value = to_millis(value)
        elif name == "status":
            value = Status(value)
        elif name == "priority":
            value = Priority(value)
        if getattr(task, name) != value:
            values[name] = value
    if not values:
        return None
    now = to_millis(now) if now is not None else utcnow()
    after = dataclasses.replace(task, **values, version=task.version + 1, updated_at=now)
    event = change_event(task, after)
    if event is EventType.COMPLETED:
        after = dataclasses.replace(after, completed_at=now)
    elif event is EventType.REOPENED:
        after = dataclasses.replace(after, completed_at=None)
    return after, event


def deleted_event_data(
    task_id: str, owner_id: str, version: int, deleted_at: datetime
) -> dict[str, Any]:
    """The `data` of task.deleted for a task deleted at `version`; the event carries the
    tombstone's version (`version + 1`)."""
    return {
        "task_id": task_id,
        "owner_id": owner_id,
        "version": version + 1,
        "deleted_at": _iso(to_millis(deleted_at)),
    }
