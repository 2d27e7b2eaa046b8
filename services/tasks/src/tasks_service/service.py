"""Use cases that take more than one step: conditional updates and deletes.

Routes stay thin; the repository stays a plain data mapper. `expected` is the set of
versions an `If-Match` header accepts (None: the client asked for no precondition).
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from typing import Any

from tasks_service.adapters.repository import TaskRepository
from tasks_service.domain.errors import VersionConflict
from tasks_service.domain.model import Task, apply_changes

__all__ = ["delete_task", "update_task"]

# Without If-Match a lost race is retried on the fresh state; bounded so a hot task
# cannot keep a request spinning.
_UNCONDITIONAL_ATTEMPTS = 5


def _check(task: Task, expected: Set[int] | None) -> None:
    if expected is not None and task.version not in expected:
        raise VersionConflict(task.id, task.version)


async def update_task(
    repo: TaskRepository,
    current: Task,
    changes: Mapping[str, Any],
    expected: Set[int] | None = None,
) -> Task:
    """Apply a partial update; of racing writers with the same If-Match exactly one wins."""
    for _ in range(_UNCONDITIONAL_ATTEMPTS):
        _check(current, expected)
        result = apply_changes(current, changes)
        if result is None:
            return current
        after, event = result
        try:
            return await repo.replace(current, after, event)
        except VersionConflict:
            if expected is not None:
                raise
        current = await repo.get(current.id, current.owner_id)
    raise VersionConflict(current.id, current.version)


async def delete_task(repo: TaskRepository, current: Task, expected: Set[int] | None) -> None:
    for _ in range(_UNCONDITIONAL_ATTEMPTS):
        _check(current, expected)
        try:
            await repo.delete(current)
            return
        except VersionConflict:
            if expected is not None:
                raise
        current = await repo.get(current.id, current.owner_id)
    raise VersionConflict(current.id, current.version)
