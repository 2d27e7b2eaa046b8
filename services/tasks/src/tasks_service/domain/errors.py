"""The tasks service's errors, free of HTTP; the API layer maps them to problem+json.

TaskError
 ├── TaskNotFound              no such live task for this caller (also: someone else's task)
 ├── VersionConflict           If-Match named a version that is no longer current
 ├── InvalidCursor             a pagination cursor that we did not issue (or for another sort)
 ├── IdempotencyKeyReused      the same Idempotency-Key with a different request body
 ├── IdempotencyKeyGone        the task first created under that key has been deleted
 └── OwnerRemoved              the caller's account was deleted (their tasks are gone)
"""

from __future__ import annotations

__all__ = [
    "IdempotencyKeyGone",
    "IdempotencyKeyReused",
    "InvalidCursor",
    "OwnerRemoved",
    "TaskError",
    "TaskNotFound",
    "VersionConflict",
]


class TaskError(Exception):
    """Base of every error the tasks service raises on purpose."""


class TaskNotFound(TaskError):
    def __init__(self, task_id: str) -> None:
        super().__init__(f"Task {task_id} not found")
        self.task_id = task_id


class VersionConflict(TaskError):
    def __init__(self, task_id: str, current_version: int | None = None) -> None:
        super().__init__(
            f"Task {task_id} has changed since the version you sent in If-Match; "
            "fetch it again and retry"
        )
        self.task_id = task_id
        self.current_version = current_version


class InvalidCursor(TaskError):
    def __init__(self, reason: str = "malformed") -> None:
        super().__init__(f"Invalid pagination cursor ({reason}); start again without one")


class IdempotencyKeyReused(TaskError):
    def __init__(self) -> None:
        super().__init__("This Idempotency-Key was already used with a different request body")


class IdempotencyKeyGone(TaskError):
    def __init__(self) -> None:
        super().__init__(
            "The task created under this Idempotency-Key has since been deleted; use a new key"
        )


class OwnerRemoved(TaskError):
    def __init__(self) -> None:
        super().__init__("This account was deleted; its tasks are gone")
