"""The tasks API: parse the request, call a use case, shape the response."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response, status
from taskmesh_common.openapi import problems
from taskmesh_common.security import CurrentPrincipal, LivePrincipal, Principal, RevocationCheck

from tasks_service.api.dependencies import IfMatch, TaskId, TaskService, etag, etag_versions
from tasks_service.api.schemas import ListParams, TaskCreate, TaskOut, TaskPage, TaskPatch
from tasks_service.domain.listing import TaskFilter
from tasks_service.service_layer.tasks import Draft

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


async def _acts_as_admin(request: Request, principal: Principal) -> bool:
    """Whether the caller may use admin powers: the role claim alone is not enough, the
    token must not have been revoked (a demotion revokes every token of the user)."""
    if not principal.is_admin:
        return False
    revocations: RevocationCheck = request.app.state.revocations
    await revocations.ensure_live(principal, strict=True)
    return True


def _with_etag(response: Response, task: TaskOut) -> TaskOut:
    response.headers["ETag"] = etag(task.version)
    return task


@router.post("", status_code=status.HTTP_201_CREATED, responses=problems(403, 409))
async def create_task(
    payload: TaskCreate,
    principal: LivePrincipal,
    tasks: TaskService,
    request: Request,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> TaskOut:
    draft = Draft(
        title=payload.title,
        description=payload.description,
        priority=payload.priority,
        due_date=payload.due_date,
        tags=tuple(payload.tags),
    )
    # Redis away (the token let through unchecked): the owner may be a deleted account.
    unchecked = not getattr(request.state, "revocation_checked", True)
    saved, created = await tasks.create(
        principal.user_id, draft, idempotency_key, confirm_owner=unchecked
    )
    response.headers["Location"] = f"{PREFIX}/{saved.id}"
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return _with_etag(response, TaskOut.from_task(saved))


@router.get("", responses=problems(400, 403))
async def list_tasks(
    params: Annotated[ListParams, Query()],
    principal: CurrentPrincipal,
    tasks: TaskService,
    request: Request,
) -> TaskPage:
    others = params.owner_id is not None and params.owner_id != principal.user_id
    is_admin = others and await _acts_as_admin(request, principal)
    flt = TaskFilter(
        owner_id=params.owner_id or principal.user_id,
        status=params.status,
        priority=params.priority,
        tag=params.tag,
        q=params.q,
        due_before=params.due_before,
        due_after=params.due_after,
    )
    page = await tasks.list(
        flt,
        params.sort,
        params.limit,
        params.cursor,
        principal.user_id,
        is_admin=is_admin,
    )
    return TaskPage(items=[TaskOut.from_task(t) for t in page.tasks], next_cursor=page.next_cursor)


@router.get(
    "/{task_id}", response_model=TaskOut, responses={304: {"description": "If-None-Match matched"}}
)
async def get_task(
    task_id: TaskId,
    principal: CurrentPrincipal,
    tasks: TaskService,
    request: Request,
    response: Response,
    if_none_match: IfNoneMatch = None,
) -> TaskOut | Response:
    is_admin = await _acts_as_admin(request, principal)
    task = await tasks.get(task_id, principal.user_id, is_admin=is_admin)
    if if_none_match is not None:
        versions = etag_versions(if_none_match)
        if versions is None or task.version in versions:
            return Response(status_code=304, headers={"ETag": etag(task.version)})
    return _with_etag(response, TaskOut.from_task(task))


@router.patch("/{task_id}", responses=problems(412))
async def update_task(
    task_id: TaskId,
    payload: TaskPatch,
    principal: LivePrincipal,
    expected: IfMatch,
    tasks: TaskService,
    response: Response,
) -> TaskOut:
    updated = await tasks.update(task_id, principal.user_id, payload.changes(), expected)
    return _with_etag(response, TaskOut.from_task(updated))


@router.delete(
    "/{task_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(412),
)
async def delete_task(
    task_id: TaskId, principal: LivePrincipal, expected: IfMatch, tasks: TaskService
) -> Response:
    await tasks.delete(task_id, principal.user_id, expected)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
