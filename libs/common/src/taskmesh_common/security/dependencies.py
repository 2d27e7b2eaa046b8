"""FastAPI dependencies: the verified caller of a request, from its bearer token."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from taskmesh_common.errors import Forbidden, NotAuthenticated
from taskmesh_common.security.principal import Principal
from taskmesh_common.security.verifier import TokenVerifier

__all__ = [
    "AdminPrincipal",
    "CurrentPrincipal",
    "MissingToken",
    "admin_principal",
    "current_principal",
]

# auto_error=False: FastAPI's own error is a plain 403 without WWW-Authenticate; ours is
# a 401 problem+json. The scheme still documents bearer auth in the OpenAPI document.
_bearer = HTTPBearer(auto_error=False, bearerFormat="JWT", description="Access token from auth")


class MissingToken(NotAuthenticated):
    """No bearer token at all: RFC 6750 says the challenge then carries no error code."""

    def __init__(self, detail: str = "A bearer token is required", **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.headers = {"WWW-Authenticate": 'Bearer realm="taskmesh"'}


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller proven by `Authorization: Bearer <token>`, verified by `app.state.verifier`."""
    if credentials is None or not credentials.credentials.strip():
        raise MissingToken()
    verifier: TokenVerifier = request.app.state.verifier
    principal = await verifier.verify(credentials.credentials.strip())
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def admin_principal(principal: CurrentPrincipal) -> Principal:
    if not principal.is_admin:
        raise Forbidden("This operation requires the admin role")
    return principal


AdminPrincipal = Annotated[Principal, Depends(admin_principal)]
