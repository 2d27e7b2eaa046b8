"""FastAPI dependencies: the verified caller of a request, from its bearer token."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from taskmesh_common.errors import Forbidden, NotAuthenticated
from taskmesh_common.security.principal import Principal
from taskmesh_common.security.revocation import RevocationCheck
from taskmesh_common.security.verifier import TokenVerifier

__all__ = [
    "AdminPrincipal",
    "CurrentPrincipal",
    "LivePrincipal",
    "MissingToken",
    "admin_principal",
    "current_principal",
    "live_principal",
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


def _revocations(request: Request) -> RevocationCheck:
    revocations: RevocationCheck | None = getattr(request.app.state, "revocations", None)
    if revocations is None:
        raise RuntimeError("app.state.revocations is not set: revoked tokens would pass")
    return revocations


async def live_principal(request: Request, principal: CurrentPrincipal) -> Principal:
    """The caller, whose token was not revoked since it was issued (for writes).

    `request.state.revocation_checked` is False when Redis did not answer and the write was
    let through unchecked (fail open), for routes that then check what they can themselves.
    """
    request.state.revocation_checked = await _revocations(request).ensure_live(principal)
    return principal


LivePrincipal = Annotated[Principal, Depends(live_principal)]


async def admin_principal(request: Request, principal: CurrentPrincipal) -> Principal:
    """An admin whose token was not revoked: a demotion revokes every token of the user, so
    the role in a live token is the current one. Refused (503) when that cannot be checked."""
    if not principal.is_admin:
        raise Forbidden("This operation requires the admin role")
    await _revocations(request).ensure_live(principal, strict=True)
    return principal


AdminPrincipal = Annotated[Principal, Depends(admin_principal)]
