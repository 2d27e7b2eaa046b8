"""/api/v1/auth: registration, tokens, the caller's own account, and the JWKS."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status
from fastapi.responses import JSONResponse
from taskmesh_common.openapi import problems
from taskmesh_common.security import CurrentPrincipal, LivePrincipal

from auth_service.api.dependencies import AccountsDep, ClientAddress, KeysDep, SessionsDep
from auth_service.api.schemas import (
    LoginRequest,
    LogoutRequest,
    PasswordChange,
    PasswordConfirmation,
    RefreshRequest,
    RegisterRequest,
    TokenResponse,
    UserOut,
)
from auth_service.service_layer.clock import utcnow
from auth_service.service_layer.sessions import TokenPair

__all__ = ["JWKS_CACHE_CONTROL", "jwks_router", "router"]

# Verifiers cache the JWKS for as long (and refetch on an unknown kid); a new key signs at
# once after a rotation, so any HTTP cache between must not hold it longer than this.
JWKS_CACHE_CONTROL = "public, max-age=300"
router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
jwks_router = APIRouter(tags=["keys"])
_NO_STORE = {"Cache-Control": "no-store"}


def _tokens(pair: TokenPair, response: Response) -> TokenResponse:
    # Tokens must not sit in any cache (RFC 6749, section 5.1).
    response.headers.update(_NO_STORE)
    return TokenResponse(
        access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in
    )


@router.post("/register", status_code=status.HTTP_201_CREATED, responses=problems(409))
async def register(body: RegisterRequest, accounts: AccountsDep) -> UserOut:
    user = await accounts.register(body.email, body.password, body.display_name)
    return UserOut.of(user)


@router.post("/login", responses=problems(401))
async def login(
    body: LoginRequest, sessions: SessionsDep, client: ClientAddress, response: Response
) -> TokenResponse:
    return _tokens(await sessions.login(body.email, body.password, client), response)


@router.post("/refresh", responses=problems(401))
async def refresh(body: RefreshRequest, sessions: SessionsDep, response: Response) -> TokenResponse:
    return _tokens(await sessions.refresh(body.refresh_token), response)


def _session_id(principal: CurrentPrincipal) -> str | None:
    sid = principal.claims.get("sid")
    return sid if isinstance(sid, str) else None


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses=problems(401, 503))
async def logout(body: LogoutRequest, principal: CurrentPrincipal, sessions: SessionsDep) -> None:
    """Log out the login session this refresh token belongs to: its refresh token family and
    its access tokens."""
    await sessions.logout(principal.user_id, body.refresh_token, _session_id(principal))


@router.post("/logout-all", status_code=status.HTTP_204_NO_CONTENT, responses=problems(401, 503))
async def logout_everywhere(principal: LivePrincipal, sessions: SessionsDep) -> None:
    """End every session of the caller: all refresh tokens and access tokens."""
    await sessions.logout_everywhere(principal.user_id)


@router.post("/password", responses=problems(401, 403, 429, 503))
async def change_password(
    body: PasswordChange,
    principal: LivePrincipal,
    sessions: SessionsDep,
    client: ClientAddress,
    response: Response,
) -> TokenResponse:
    """Change the password (the current one proves it is the owner). Every session ends;
    the answer is a new session for the caller."""
    pair = await sessions.change_password(
        principal.user_id, body.current_password, body.new_password, client
    )
    return _tokens(pair, response)


@router.get("/me")
async def me(principal: CurrentPrincipal, accounts: AccountsDep) -> UserOut:
    # Read from the database: a disabled account shows `disabled: true` at once.
    return UserOut.of(await accounts.live_user(principal.user_id))


@router.delete(
    "/me",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(401, 403, 429, 503),
)
async def delete_me(
    body: PasswordConfirmation,
    principal: LivePrincipal,
    accounts: AccountsDep,
    sessions: SessionsDep,
    client: ClientAddress,
) -> None:
    """Delete the caller's account; the current password confirms it."""
    await sessions.confirm_password(principal.user_id, body.password, client)
    await accounts.delete(principal.user_id)


class JwkSetResponse(JSONResponse):
    """A JWK Set (RFC 7517, section 8.5.1): documented with its own media type."""

    media_type = "application/jwk-set+json"


async def _jwks(keys: KeysDep) -> JSONResponse:
    now = utcnow()
    # A JWKS asked for before the start-up task made the first key would be empty.
    await keys.current(now)
    document: dict[str, Any] = await keys.jwks(now)
    return JwkSetResponse(document, headers={"Cache-Control": JWKS_CACHE_CONTROL})


for _router, _name in ((jwks_router, "jwks"), (router, "auth_jwks")):
    _router.add_api_route(
        "/.well-known/jwks.json",
        _jwks,
        methods=["GET"],
        name=_name,
        summary="Public signing keys (JWKS)",
        response_class=JwkSetResponse,
    )
