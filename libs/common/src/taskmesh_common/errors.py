"""RFC 9457 problem details for every error a service returns.

    Exception
     └── ProblemError          an error that already knows its HTTP shape
          ├── NotAuthenticated  401, with WWW-Authenticate: Bearer
          ├── Forbidden         403
          ├── NotFound          404
          ├── Conflict          409
          ├── TooManyRequests   429, with Retry-After
          └── DependencyUnavailable  503, with Retry-After

Services keep their own domain errors free of HTTP and map them once at the edge
with :func:`register_problem`; anything unexpected becomes a 500 that leaks nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from taskmesh_common.context import request_id_var

__all__ = [
    "PROBLEM_CONTENT_TYPE",
    "Conflict",
    "DependencyUnavailable",
    "Forbidden",
    "NotAuthenticated",
    "NotFound",
    "ProblemError",
    "TooManyRequests",
    "install_error_handlers",
    "problem_response",
    "problem_title",
    "problem_type",
    "register_problem",
]

PROBLEM_CONTENT_TYPE = "application/problem+json"
logger = logging.getLogger("taskmesh.errors")

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    412: "Precondition Failed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    428: "Precondition Required",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def problem_type(slug: str) -> str:
    """The `type` URI of a problem, stable across services."""
    return f"urn:taskmesh:problem:{slug}"


def problem_title(status: int) -> str:
    """The standard reason phrase of an error status, the `title` of its problems."""
    return _TITLES.get(status, "Error")


def _default_slug(status: int) -> str:
    return _TITLES.get(status, "error").lower().replace(" ", "-")


def problem_response(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    slug: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": problem_type(slug or _default_slug(status)),
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    request_id = request_id_var.get()
    if request_id:
        body["request_id"] = request_id
    body.update(extra)
    return JSONResponse(
        body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_CONTENT_TYPE
    )


class ProblemError(Exception):
    status: int = 500
    slug: str = "internal-error"
    title: str = "Internal Server Error"

    def __init__(
        self,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = extra


class NotAuthenticated(ProblemError):
    status, slug, title = 401, "not-authenticated", "Unauthorized"

    def __init__(self, detail: str = "A valid bearer token is required", **extra: Any) -> None:
        super().__init__(
            detail, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}, **extra
        )


class Forbidden(ProblemError):
    status, slug, title = 403, "forbidden", "Forbidden"


class NotFound(ProblemError):
    status, slug, title = 404, "not-found", "Not Found"


class Conflict(ProblemError):
    status, slug, title = 409, "conflict", "Conflict"


class TooManyRequests(ProblemError):
    status, slug, title = 429, "rate-limited", "Too Many Requests"

    def __init__(self, detail: str, *, retry_after: int, **extra: Any) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))}, **extra)


class DependencyUnavailable(ProblemError):
    status, slug, title = 503, "dependency-unavailable", "Service Unavailable"

    def __init__(self, detail: str, *, retry_after: int = 2, **extra: Any) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)}, **extra)


def register_problem(
    app: FastAPI, exc_type: type[Exception], status: int, slug: str, title: str | None = None
) -> None:
    """Map a domain error (and, through the MRO, its subclasses) to a problem response."""

    async def handler(_request: Request, exc: Exception) -> JSONResponse:
        return problem_response(status, str(exc), title=title, slug=slug)

    app.add_exception_handler(exc_type, handler)


def _jsonable_loc(loc: Any) -> list[str | int]:
    return [part if isinstance(part, int) else str(part) for part in loc]


def install_error_handlers(app: FastAPI) -> None:
    """Every error the app can produce becomes problem+json."""

    async def on_problem(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProblemError)
        return problem_response(
            exc.status, exc.detail, title=exc.title, slug=exc.slug, headers=exc.headers, **exc.extra
        )

    async def on_http(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "")
        return problem_response(exc.status_code, detail, headers=exc.headers)

    async def on_validation(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        # Field, message and error type only: echoing the input back could reflect secrets.
        errors = [
            {
                "loc": _jsonable_loc(err.get("loc", ())),
                "msg": str(err.get("msg")),
                "type": err.get("type"),
            }
            for err in exc.errors()
        ]
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in errors)
        return problem_response(
            422, f"Invalid request: {fields}", slug="validation-error", errors=errors
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception(
            "unhandled error", extra={"path": request.url.path, "error_type": type(exc).__name__}
        )
        return problem_response(500, "An unexpected error occurred", slug="internal-error")

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(Exception, on_unexpected)
