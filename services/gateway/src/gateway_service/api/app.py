"""The composition root of the gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from taskmesh_common.app import create_service_app
from taskmesh_common.redis import create_redis

from gateway_service.config import Settings

__all__ = ["create_app"]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = create_redis(settings.redis_url)
        app.state.redis = redis
        app.state.readiness.add("redis", redis.ping)
        try:
            yield
        finally:
            await redis.aclose()

    return create_service_app(settings, title="taskmesh gateway", lifespan=lifespan)
