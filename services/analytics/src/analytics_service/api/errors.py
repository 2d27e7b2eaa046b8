"""The analytics errors as problem+json, registered once at the edge."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pymongo.errors import PyMongoError
from taskmesh_common.errors import problem_response, register_problem

from analytics_service.domain.errors import InvalidDateRange

__all__ = ["install_analytics_errors"]

logger = logging.getLogger("analytics.api")


def install_analytics_errors(app: FastAPI) -> None:
    register_problem(app, InvalidDateRange, 422, "invalid-date-range", "Invalid date range")

    async def on_mongo(_request: Request, exc: Exception) -> JSONResponse:
        # The driver's message names hosts and internals; the client learns only "retry".
        logger.warning("mongo unavailable", extra={"error": f"{type(exc).__name__}: {exc}"})
        return problem_response(
            503,
            "The statistics database is unavailable; retry shortly",
            slug="dependency-unavailable",
            headers={"Retry-After": "2"},
        )

    app.add_exception_handler(PyMongoError, on_mongo)
