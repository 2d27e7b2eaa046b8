"""The auth errors, and the outside world's failures, as problem+json."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pymongo.errors import PyMongoError
from redis.exceptions import RedisError
from taskmesh_common.errors import problem_response, register_problem

from auth_service.domain import errors

__all__ = ["install_auth_errors"]

logger = logging.getLogger("auth.errors")
_BEARER = {"WWW-Authenticate": 'Bearer realm="taskmesh"'}


def _with_headers(
    app: FastAPI,
    exc_type: type[Exception],
    status: int,
    slug: str,
    headers: Callable[[Exception], dict[str, str]],
) -> None:
    async def handler(_request: Request, exc: Exception) -> JSONResponse:
        return problem_response(status, str(exc), slug=slug, headers=headers(exc))

    app.add_exception_handler(exc_type, handler)


def _retry_after(exc: Exception) -> dict[str, str]:
    assert isinstance(exc, errors.TooManyFailedLogins | errors.HashingBusy)
    return {"Retry-After": str(exc.retry_after)}


def install_auth_errors(app: FastAPI) -> None:
    register_problem(app, errors.EmailTaken, 409, "email-taken")
    register_problem(app, errors.UserNotFound, 404, "user-not-found")
    register_problem(app, errors.ChangeNotAllowed, 409, "change-not-allowed")
    register_problem(app, errors.InvalidCursor, 422, "invalid-cursor")
    register_problem(app, errors.WrongPassword, 403, "wrong-password")
    # A 401 must carry a challenge (RFC 9110), even where no bearer token was involved.
    _with_headers(app, errors.InvalidCredentials, 401, "invalid-credentials", lambda _: _BEARER)
    _with_headers(app, errors.RefreshTokenRejected, 401, "invalid-refresh-token", lambda _: _BEARER)
    _with_headers(app, errors.AccountUnavailable, 401, "account-unavailable", lambda _: _BEARER)
    _with_headers(app, errors.TooManyFailedLogins, 429, "too-many-failed-logins", _retry_after)
    # Overload, not failure: answered at once, and the gateway does not count it as broken.
    _with_headers(app, errors.HashingBusy, 503, "hashing-busy", _retry_after)
    _with_headers(
        app,
        errors.SigningKeyUnavailable,
        503,
        "signing-key-unavailable",
        lambda _: {"Retry-After": "2"},
    )

    # The database or Redis failing is our dependency's fault, not a bug: 503, retry later.
    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        name = "database" if isinstance(exc, PyMongoError) else "cache"
        logger.warning(
            f"{name} unavailable",
            extra={"path": request.url.path, "error": f"{type(exc).__name__}: {exc}"[:300]},
        )
        return problem_response(
            503,
            f"The {name} is unavailable; retry shortly",
            slug="dependency-unavailable",
            headers={"Retry-After": "2"},
        )

    app.add_exception_handler(PyMongoError, unavailable)
    app.add_exception_handler(RedisError, unavailable)
