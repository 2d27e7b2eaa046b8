"""Task facts: what analytics knows about one task, and how an event changes it.

A fact is the task's latest state as told by its events, guarded by the task's `version`:
an event whose version is not newer than the stored one changes nothing, so duplicates and
older events arriving late are harmless. A deleted task keeps a tombstone fact (with its
version) so that its older events, arriving after the deletion, are ignored too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = [
    "DONE",
    "PRIORITIES",
    "STATUSES",
    "TaskFact",
    "TaskRemoval",
    "TaskSnapshot",
    "as_utc",
    "day_of",
    "fact_from_removal",
    "fact_from_snapshot",
    "newest_facts",
    "supersedes",
]

STATUSES = ("todo", "in_progress", "done")
PRIORITIES = ("low", "medium", "high", "urgent")
DONE = "done"


@dataclass(frozen=True)
class TaskSnapshot:
    """A task's state after a write (task.created/updated/completed/reopened)."""

    task_id: str
    owner_id: str
    version: int
    status: str
    priority: str
    due_date: datetime | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None


@dataclass(frozen=True)
class TaskRemoval:
    """A task's deletion (task.deleted)."""

    task_id: str
    owner_id: str
    version: int
    deleted_at: datetime


@dataclass(frozen=True)
class TaskFact:
    """One task as the statistics count it, every derived field computed once.

    `created_day`/`completed_day` are UTC days (`YYYY-MM-DD`, which sorts as dates do);
    `changed_at` is when the fact last changed by the task's own clock (not ours), so a
    rebuild from the same events gives the same `updated_at`.
    """

    task_id: str
    owner_id: str
    version: int
    deleted: bool
    changed_at: datetime
    status: str | None = None
    priority: str | None = None
    due_date: datetime | None = None
    created_at: datetime | None = None
    created_day: str | None = None
    completed_at: datetime | None = None
    completed_day: str | None = None
    completion_seconds: float | None = None


def as_utc(moment: datetime) -> datetime:
    """Naive datetimes are taken as UTC (that is what BSON stores)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def day_of(moment: datetime) -> str:
    """The UTC calendar day of a moment, as stored in facts."""
    return as_utc(moment).date().isoformat()


def supersedes(event_version: int, stored_version: int | None) -> bool:
    """Whether an event may change a fact: only a strictly newer version does."""
    return stored_version is None or event_version > stored_version


def fact_from_snapshot(snapshot: TaskSnapshot) -> TaskFact:
    """The fact of a live task.

    Completion counts only while the task is done: a reopened task carries no completion
    day, so the same projection gives "a reopen removes it from completed" for free.
    """
    completed_at = None
    completion_seconds = None
    if snapshot.status == DONE:
        # A done task always has completed_at; fall back to updated_at rather than lose it.
        completed_at = as_utc(snapshot.completed_at or snapshot.updated_at)
        completion_seconds = max(0.0, (completed_at - as_utc(snapshot.created_at)).total_seconds())
    return TaskFact(
        task_id=snapshot.task_id,
        owner_id=snapshot.owner_id,
        version=snapshot.version,
        deleted=False,
        changed_at=as_utc(snapshot.updated_at),
        status=snapshot.status,
        priority=snapshot.priority,
        due_date=as_utc(snapshot.due_date) if snapshot.due_date else None,
        created_at=as_utc(snapshot.created_at),
        created_day=day_of(snapshot.created_at),
        completed_at=completed_at,
        completed_day=day_of(completed_at) if completed_at else None,
        completion_seconds=completion_seconds,
    )


def fact_from_removal(removal: TaskRemoval) -> TaskFact:
    """A tombstone: it counts nowhere, but its version still guards against late events."""
    return TaskFact(
        task_id=removal.task_id,
        owner_id=removal.owner_id,
        version=removal.version,
        deleted=True,
        changed_at=as_utc(removal.deleted_at),
    )


def newest_facts(facts: Iterable[TaskFact]) -> list[TaskFact]:
    """The newest fact of each task among these (the first seen of equal versions)."""
    newest: dict[str, TaskFact] = {}
    for fact in facts:
        held = newest.get(fact.task_id)
        if supersedes(fact.version, None if held is None else held.version):
            newest[fact.task_id] = fact
    return list(newest.values())
