"""Typed dependencies: the repository, the task a caller may see or change, and ETags."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Header, Path, Request
from taskmesh_common.security import CurrentPrincipal

from tasks_service.adapters.repository import TaskRepository
from tasks_service.domain.errors import TaskNotFound
from tasks_service.domain.model import Task

__all__ = [
    "IfMatch",
    "OwnedTask",
    "ReadableTask",
    "Repository",
    "etag",
    "etag_versions",
    "owned_task",
    "readable_task",
]


async def get_repository(request: Request) -> TaskRepository:
    # `async def` like every dependency: FastAPI runs a plain `def` one in a worker thread.
    repository: TaskRepository = request.app.state.repository
    return repository


Repository = Annotated[TaskRepository, Depends(get_repository)]


def _task_id(raw: str) -> str:
    # Ids are uuid4 strings; anything else cannot name a task, so it is simply not found.
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise TaskNotFound(raw[:64]) from None


TaskIdPath = Annotated[str, Path(alias="task_id", max_length=64)]


async def owned_task(task_id: TaskIdPath, principal: CurrentPrincipal, repo: Repository) -> Task:
    """The caller's own live task; someone else's is a 404, exactly like a missing one."""
    return await repo.get(_task_id(task_id), principal.user_id)


async def readable_task(task_id: TaskIdPath, principal: CurrentPrincipal, repo: Repository) -> Task:
    """Like `owned_task`, but admins may read any user's task."""
    return await repo.get(_task_id(task_id), None if principal.is_admin else principal.user_id)


OwnedTask = Annotated[Task, Depends(owned_task)]
ReadableTask = Annotated[Task, Depends(readable_task)]


def etag(version: int) -> str:
    return f'"{version}"'


def etag_versions(header: str | None) -> frozenset[int] | None:
    """Versions named by If-Match/If-None-Match; None for no header or `*` (any version).

    Weak tags compare by their value (RFC 9110 weak comparison is enough for versions);
    anything unparseable names no version, so it can never match.
    """
    if header is None or header.strip() == "*":
        return None
    versions: set[int] = set()
    for part in header.split(",")[:50]:
        tag = part.strip().removeprefix("W/").strip('"')
        if tag.isdigit() and len(tag) <= 18:
            versions.add(int(tag))
    return frozenset(versions)


async def if_match(
    header: Annotated[str | None, Header(alias="If-Match", max_length=1024)] = None,
) -> frozenset[int] | None:
    return etag_versions(header)


IfMatch = Annotated[frozenset[int] | None, Depends(if_match)]
