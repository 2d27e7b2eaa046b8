"""The one place where the tasks service's errors, and MongoDB's, become problem+json."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pymongo.errors import ConnectionFailure
from taskmesh_common.errors import problem_response, register_problem

from tasks_service.domain.errors import (
    IdempotencyKeyGone,
    IdempotencyKeyReused,
    InvalidCursor,
    OwnerRemoved,
    TaskNotFound,
    VersionConflict,
)

__all__ = ["MONGO_RETRY_AFTER_SECONDS", "install_task_errors"]

logger = logging.getLogger("tasks.api")
MONGO_RETRY_AFTER_SECONDS = 2


def install_task_errors(app: FastAPI) -> None:
    register_problem(app, TaskNotFound, 404, "task-not-found", "Task Not Found")
    register_problem(app, VersionConflict, 412, "version-conflict", "Precondition Failed")
    register_problem(app, InvalidCursor, 400, "invalid-cursor", "Invalid Cursor")
    register_problem(app, IdempotencyKeyReused, 422, "idempotency-key-reused")
    register_problem(app, IdempotencyKeyGone, 409, "idempotency-key-gone")
    register_problem(app, OwnerRemoved, 403, "account-deleted")

    # ServerSelectionTimeoutError, AutoReconnect and NetworkTimeout are all ConnectionFailures:
    # the database is away, the request may well succeed shortly, so say 503, never 500.
    async def on_mongo_unavailable(request: Request, exc: Exception) -> JSONResponse:
        logger.warning(
            "MongoDB unavailable",
            extra={"path": request.url.path, "error_type": type(exc).__name__},
        )
        return problem_response(
            503,
            "The task store is unavailable; retry shortly",
            slug="dependency-unavailable",
            headers={"Retry-After": str(MONGO_RETRY_AFTER_SECONDS)},
        )

    app.add_exception_handler(ConnectionFailure, on_mongo_unavailable)
