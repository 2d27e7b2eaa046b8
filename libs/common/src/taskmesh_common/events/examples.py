"""One realistic example per event type: in the AsyncAPI document, and checked by contract tests.

Fixed ids and times, so the generated documents are byte-for-byte reproducible.
"""

from __future__ import annotations

from typing import Any

from taskmesh_common.events.schemas import DATA_VERSION, EVENT_DATA_MODELS

__all__ = ["EXAMPLE_DATA", "example_envelope"]

_TASK = {
    "task_id": "6650f1c2a4b5c6d7e8f90123",
    "owner_id": "0b5e3c9e-6f7a-4b1c-9d2e-3f4a5b6c7d8e",
    "title": "Prepare the quarterly report",
    "priority": "high",
    "due_date": "2026-07-01T17:00:00Z",
    "tags": ["finance", "q2"],
    "created_at": "2026-06-20T09:30:00Z",
}

EXAMPLE_DATA: dict[str, dict[str, Any]] = {
    "task.created": {
        **_TASK,
        "version": 1,
        "status": "todo",
        "updated_at": "2026-06-20T09:30:00Z",
        "completed_at": None,
    },
    "task.updated": {
        **_TASK,
        "version": 2,
        "status": "in_progress",
        "updated_at": "2026-06-21T08:00:00Z",
        "completed_at": None,
    },
    "task.completed": {
        **_TASK,
        "version": 3,
        "status": "done",
        "updated_at": "2026-06-25T16:45:00Z",
        "completed_at": "2026-06-25T16:45:00Z",
    },
    "task.reopened": {
        **_TASK,
        "version": 4,
        "status": "todo",
        "updated_at": "2026-06-26T10:00:00Z",
        "completed_at": None,
    },
    "task.deleted": {
        "task_id": _TASK["task_id"],
        "owner_id": _TASK["owner_id"],
        "version": 5,
        "deleted_at": "2026-06-27T12:00:00Z",
    },
    "user.registered": {
        "user_id": _TASK["owner_id"],
        "email": "ada@example.com",
        "display_name": "Ada",
        "role": "user",
        "created_at": "2026-06-01T08:00:00Z",
    },
    "user.role_changed": {
        "user_id": _TASK["owner_id"],
        "role": "admin",
        "previous_role": "user",
        "changed_at": "2026-06-02T08:00:00Z",
    },
    "user.disabled": {
        "user_id": _TASK["owner_id"],
        "disabled": True,
        "changed_at": "2026-06-03T08:00:00Z",
    },
    "user.deleted": {"user_id": _TASK["owner_id"], "deleted_at": "2026-06-28T08:00:00Z"},
}

assert set(EXAMPLE_DATA) == set(EVENT_DATA_MODELS), "every event type needs an example"


def example_envelope(event_type: str) -> dict[str, Any]:
    data = EXAMPLE_DATA[event_type]
    service, subject_field = (
        ("tasks", "task_id")
        if event_type.startswith("task.")
        else (
            "auth",
            "user_id",
        )
    )
    return {
        "id": "3f2b8c1e-8a4d-4c6b-9e1f-2a3b4c5d6e7f",
        "type": event_type,
        "source": f"taskmesh/{service}",
        "time": "2026-06-20T09:30:00.123456Z",
        "subject": data[subject_field],
        "data_version": DATA_VERSION,
        "data": data,
    }
