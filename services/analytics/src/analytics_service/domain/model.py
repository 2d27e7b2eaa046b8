"""Task facts: what analytics knows about one task, and how an event changes it.

A fact is the task's latest state as told by its events, guarded by the task's `version`:
an event whose version is not newer than the stored one changes nothing, so duplicates and
older events arriving late are harmless. A deleted task keeps a tombstone fact (with its
version) so that its older events, arriving after the deletion, are ignored too.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

__all__ = [
    "PRIORITIES",
    "STATUSES",
    "TaskRemoval",
    "TaskSnapshot",
    "day_of",
    "entry_key",
    "fact_from_removal",
    "fact_from_snapshot",
    "stats_entry",
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


def as_utc(moment: datetime) -> datetime:
    """Naive datetimes are taken as UTC (that is what BSON stores)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def day_of(moment: datetime) -> str:
    """The UTC calendar day of a moment, as stored in facts (`YYYY-MM-DD` sorts as dates do)."""
    return as_utc(moment).date().isoformat()


def parse_day(text: str) -> date:
    return date.fromisoformat(text)


def supersedes(event_version: int, stored_version: int | None) -> bool:
    """Whether an event may change a fact: only a strictly newer version does."""
    return stored_version is None or event_version > stored_version


def fact_from_snapshot(snapshot: TaskSnapshot) -> dict[str, Any]:
    """The fact document of a live task; every derived field is computed here, once.

    Completion counts only while the task is done: a reopened task carries no completion
    day, so the same projection gives "a reopen removes it from completed" for free.
    """
    done = snapshot.status == DONE
    completed_at = None
    completion_seconds = None
    if done:
        # A done task always has completed_at; fall back to updated_at rather than lose it.
        completed_at = as_utc(snapshot.completed_at or snapshot.updated_at)
        completion_seconds = max(0.0, (completed_at - as_utc(snapshot.created_at)).total_seconds())
    return {
        "_id": snapshot.task_id,
        "owner_id": snapshot.owner_id,
        "version": snapshot.version,
        "deleted": False,
        "status": snapshot.status,
        "priority": snapshot.priority,
        "due_date": as_utc(snapshot.due_date) if snapshot.due_date else None,
        "created_at": as_utc(snapshot.created_at),
        "created_day": day_of(snapshot.created_at),
        "completed_at": completed_at,
        "completed_day": day_of(completed_at) if completed_at else None,
        "completion_seconds": completion_seconds,
        # When this fact last changed, by the task's own clock (not ours), so a rebuild
        # from the same events gives the same `updated_at`.
        "changed_at": as_utc(snapshot.updated_at),
    }


def fact_from_removal(removal: TaskRemoval) -> dict[str, Any]:
    """A tombstone: it counts nowhere, but its version still guards against late events."""
    return {
        "_id": removal.task_id,
        "owner_id": removal.owner_id,
        "version": removal.version,
        "deleted": True,
        "status": None,
        "priority": None,
        "due_date": None,
        "created_at": None,
        "created_day": None,
        "completed_at": None,
        "completed_day": None,
        "completion_seconds": None,
        "changed_at": as_utc(removal.deleted_at),
    }


_SAFE_KEY = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


def entry_key(task_id: str) -> str:
    """A task id usable as a field name (no `.`, no leading `$`), stable for the same id."""
    if _SAFE_KEY.match(task_id):
        return task_id
    return "h" + hashlib.sha256(task_id.encode()).hexdigest()[:40]


def stats_entry(fact: Mapping[str, Any]) -> dict[str, Any]:
    """A fact as the compact entry kept in its owner's statistics (`OwnerStatsTable`).

    Short field names on purpose: FerretDB decodes a whole document on every read, so the
    entries' size is what a summary and each update of a chunk cost.
    """
    if fact["deleted"]:
        return {"v": fact["version"], "x": True, "at": fact["changed_at"]}
    return {
        "v": fact["version"],
        "s": fact["status"],
        "p": fact["priority"],
        "cd": fact["created_day"],
        "kd": fact["completed_day"],
        "cs": fact["completion_seconds"],
        "due": fact["due_date"],
        "at": fact["changed_at"],
    }
