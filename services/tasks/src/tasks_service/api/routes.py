"""The tasks API: parse, call the repository or a use case, return a schema."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status
from taskmesh_common.errors import Forbidden
from taskmesh_common.security import CurrentPrincipal

from tasks_service import service
from tasks_service.api.dependencies import (
    IfMatch,
    OwnedTask,
    ReadableTask,
    Repository,
    etag,
    etag_versions,
)
from tasks_service.api.schemas import ListParams, TaskCreate, TaskOut, TaskPage, TaskPatch
from tasks_service.domain.listing import TaskFilter, decode_cursor, encode_cursor, sort_values
from tasks_service.domain.model import new_task

__all__ = ["PREFIX", "router"]

PREFIX = "/api/v1/tasks"
router = APIRouter(prefix=PREFIX, tags=["tasks"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="the same key from the same user returns the first result",
    ),
]
IfNoneMatch = Annotated[str | None, Header(alias="If-None-Match", max_length=1024)]


def _with_etag(response: Response, task: TaskOut) -> TaskOut:
    response.headers["ETag"] = etag(task.version)
    return task


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_task(
    payload: TaskCreate,
    principal: CurrentPrincipal,
    repo: Repository,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> TaskOut:
    task = new_task(
        owner_id=principal.user_id,
        title=payload.title,
        description=payload.description,
        priority=payload.priority,
        due_date=payload.due_date,
        tags=payload.tags,
    )
    # A retry must carry the same request; the hash tells a retry from a reused key.
    request_hash = hashlib.sha256(payload.model_dump_json().encode()).hexdigest()
    saved, created = await repo.add(
        task, idempotency_key=idempotency_key, request_hash=request_hash
    )
    response.headers["Location"] = f"{PREFIX}/{saved.id}"
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return _with_etag(response, TaskOut.from_task(saved))


@router.get("")
async def list_tasks(
    params: Annotated[ListParams, Query()], principal: CurrentPrincipal, repo: Repository
) -> TaskPage:
    owner_id = principal.user_id
    if params.owner_id is not None and params.owner_id != principal.user_id:
        if not principal.is_admin:
            raise Forbidden("Only admins may list another user's tasks")
        owner_id = params.owner_id
    flt = TaskFilter(
        owner_id=owner_id,
        status=params.status,
        priority=params.priority,
        tag=params.tag,
        q=params.q,
        due_before=params.due_before,
        due_after=params.due_after,
    )
    after = None if params.cursor is None else decode_cursor(params.cursor, params.sort)
    tasks, more = await repo.list(flt, params.sort, params.limit, after)
    next_cursor = (
        encode_cursor(params.sort, sort_values(tasks[-1], params.sort)) if more and tasks else None
    )
    return TaskPage(items=[TaskOut.from_task(t) for t in tasks], next_cursor=next_cursor)


@router.get(
    "/{task_id}", response_model=TaskOut, responses={304: {"description": "If-None-Match matched"}}
)
async def get_task(
    task: ReadableTask, response: Response, if_none_match: IfNoneMatch = None
) -> TaskOut | Response:
    if if_none_match is not None:
        versions = etag_versions(if_none_match)
        if versions is None or task.version in versions:
            return Response(status_code=304, headers={"ETag": etag(task.version)})
    return _with_etag(response, TaskOut.from_task(task))


@router.patch("/{task_id}", responses={412: {"description": "If-Match names a stale version"}})
async def update_task(
    payload: TaskPatch, task: OwnedTask, expected: IfMatch, repo: Repository, response: Response
) -> TaskOut:
    updated = await service.update_task(repo, task, payload.changes(), expected)
    return _with_etag(response, TaskOut.from_task(updated))


@router.delete(
    "/{task_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={412: {"description": "If-Match names a stale version"}},
)
async def delete_task(task: OwnedTask, expected: IfMatch, repo: Repository) -> Response:
    await service.delete_task(repo, task, expected)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
