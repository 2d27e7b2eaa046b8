"""Task events made up by the bench, in the shape the tasks service records them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from taskmesh_common.events import outbox_entry

__all__ = ["created_entry"]


def created_entry(task_id: str, owner: str) -> dict[str, Any]:
    """A `task.created` outbox entry of a new task."""
    now = datetime.now(UTC)
    data = {
        "task_id": task_id, "owner_id": owner, "version": 1, "title": "probe",
        "status": "todo", "priority": "medium", "due_date": None, "tags": ["bench"],
        "created_at": now, "updated_at": now, "completed_at": None,
    }  # fmt: skip
    return outbox_entry("task.created", task_id, data, source="tasks")
