"""Typed dependencies: the use cases, a task id from the path, and ETags."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Header, Path, Request

from tasks_service.domain.errors import TaskNotFound
from tasks_service.service_layer.tasks import Tasks

__all__ = ["IfMatch", "TaskId", "TaskService", "etag", "etag_versions"]


async def get_tasks(request: Request) -> Tasks:
    # `async def` like every dependency: FastAPI runs a plain `def` one in a worker thread.
    tasks: Tasks = request.app.state.tasks
    return tasks


TaskService = Annotated[Tasks, Depends(get_tasks)]


async def task_id(raw: Annotated[str, Path(alias="task_id", max_length=64)]) -> str:
    # Ids are uuid4 strings; anything else cannot name a task, so it is simply not found.
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise TaskNotFound(raw[:64]) from None


TaskId = Annotated[str, Depends(task_id)]


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
