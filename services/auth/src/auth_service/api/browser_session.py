"""/api/v1/auth/session: the same logins and refresh rotation, for a browser.

A browser page must not hold the refresh token where script can read it. Here the refresh
token travels only in a cookie, ``HttpOnly; Secure; SameSite=Strict``, whose path is this
prefix, so the browser sends it to refresh and logout and nowhere else; the body carries the
access token alone, which the page keeps in memory. Opt-in: ``/login``, ``/refresh`` and
``/logout`` answer bearer clients exactly as before.

A cookie is sent by the browser on its own, so every route here also refuses a request that
did not come from our own page (cross-site request forgery): it must carry the
``X-Taskmesh-Client`` header, which a cross-origin page cannot add without a CORS preflight
the gateway refuses, and an ``Origin`` or ``Sec-Fetch-Site``, when the browser sends them,
must name this very origin.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Cookie, Depends, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from taskmesh_common.errors import Forbidden, problem_response

from auth_service.api.dependencies import ClientAddress, SessionsDep
from auth_service.api.schemas import LoginRequest
from auth_service.config import Settings
from auth_service.domain.errors import RefreshTokenRejected
from auth_service.service_layer.sessions import Sessions, TokenPair

__all__ = ["CLIENT_HEADER", "COOKIE_NAME", "COOKIE_PATH", "router"]

COOKIE_PATH = "/api/v1/auth/session"
COOKIE_NAME = "taskmesh_refresh"
CLIENT_HEADER = "X-Taskmesh-Client"
_NO_STORE = {"Cache-Control": "no-store"}
_BEARER = {"WWW-Authenticate": 'Bearer realm="taskmesh"'}


def _addressed_host(request: Request) -> str:
    """The host (and port) the browser addressed: the gateway's public one when it forwarded
    us. Only the host is compared: a TLS terminator in front of the gateway makes the scheme
    the browser used differ from the one the gateway saw, and no other page can share the
    host and port of ours."""
    return (request.headers.get("x-forwarded-host") or request.headers.get("host") or "").lower()


async def same_origin_only(request: Request) -> None:
    """Refuse (403) what a page of another origin could have made the browser send."""
    if not request.headers.get(CLIENT_HEADER):
        raise Forbidden(f"The {CLIENT_HEADER} header is required on session requests")
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        raise Forbidden("Session requests must come from the console's own origin")
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin.lower()).netloc != _addressed_host(request):
        raise Forbidden("Session requests must come from the console's own origin")


router = APIRouter(prefix=COOKIE_PATH, tags=["browser session"])
_SAME_ORIGIN = [Depends(same_origin_only)]
RefreshCookie = Annotated[str | None, Cookie(alias=COOKIE_NAME, max_length=256)]


class AccessTokenResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int = Field(description="seconds until the access token expires")


def _set_cookie(response: Response, token: str, max_age: int) -> None:
    response.set_cookie(
        COOKIE_NAME,
        token,
        max_age=max_age,
        path=COOKIE_PATH,
        secure=True,
        httponly=True,
        samesite="strict",
    )


def _clear_cookie(response: Response) -> None:
    response.delete_cookie(
        COOKIE_NAME, path=COOKIE_PATH, secure=True, httponly=True, samesite="strict"
    )


def _issued(pair: TokenPair, request: Request, response: Response) -> AccessTokenResponse:
    settings: Settings = request.app.state.settings
    response.headers.update(_NO_STORE)
    _set_cookie(response, pair.refresh_token, settings.refresh_token_ttl_seconds)
    return AccessTokenResponse(access_token=pair.access_token, expires_in=pair.expires_in)


@router.post(
    "/login",
    dependencies=_SAME_ORIGIN,
    summary="Log in; the refresh token is set as an HttpOnly cookie",
)
async def session_login(
    body: LoginRequest,
    sessions: SessionsDep,
    client: ClientAddress,
    request: Request,
    response: Response,
    token: RefreshCookie = None,
) -> AccessTokenResponse:
    pair = await sessions.login(body.email, body.password, client)
    # The new cookie replaces the browser's old one: that session ends here, not in 7 days.
    await _revoke(sessions, token)
    return _issued(pair, request, response)


async def _revoke(sessions: Sessions, token: str | None) -> None:
    # The cookie's session ends, its access tokens with it.
    if token:
        await sessions.end_session(token)


@router.post(
    "/refresh",
    dependencies=_SAME_ORIGIN,
    response_model=AccessTokenResponse,
    summary="A new access token; the refresh cookie is rotated",
    responses={401: {"description": "no cookie, or a spent, revoked or expired one"}},
)
async def session_refresh(
    sessions: SessionsDep, request: Request, response: Response, token: RefreshCookie = None
) -> AccessTokenResponse | JSONResponse:
    try:
        if not token:
            raise RefreshTokenRejected("No session cookie: log in")
        pair = await sessions.refresh(token)
    except RefreshTokenRejected as exc:
        # A dead cookie is dropped, so the page shows its login form rather than retrying.
        rejected = problem_response(
            401, str(exc), slug="invalid-refresh-token", headers=_BEARER | _NO_STORE
        )
        _clear_cookie(rejected)
        return rejected
    return _issued(pair, request, response)


@router.post(
    "/logout",
    dependencies=_SAME_ORIGIN,
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke the cookie's refresh family and drop the cookie",
)
async def session_logout(
    sessions: SessionsDep, response: Response, token: RefreshCookie = None
) -> None:
    # The cookie itself is the credential: logging out works with an expired access token.
    await _revoke(sessions, token)
    _clear_cookie(response)
