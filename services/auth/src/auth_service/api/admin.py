"""/api/v1/auth admin operations: users and signing keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from taskmesh_common.openapi import problems

from auth_service.api.dependencies import AccountsDep, CurrentAdmin, KeysDep
from auth_service.api.schemas import UserChange, UserOut, UsersPage
from auth_service.service_layer.clock import utcnow

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/auth", tags=["admin"], responses=problems(403))
UserId = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("/users")
async def list_users(
    _admin: CurrentAdmin,
    accounts: AccountsDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> UsersPage:
    users, next_cursor = await accounts.page(limit, cursor)
    return UsersPage(items=[UserOut.of(u) for u in users], next_cursor=next_cursor)


@router.patch("/users/{user_id}", responses=problems(409))
async def change_user(
    user_id: UserId, body: UserChange, admin: CurrentAdmin, accounts: AccountsDep
) -> UserOut:
    user = await accounts.change(admin.id, user_id, role=body.role, disabled=body.disabled)
    return UserOut.of(user)


@router.post("/keys/rotate")
async def rotate_keys(_admin: CurrentAdmin, keys: KeysDep) -> dict[str, str]:
    key = await keys.rotate(utcnow())
    return {"kid": key.kid}
