"""The composition root of the analytics service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from taskmesh_common.amqp import BrokerConnection
from taskmesh_common.app import create_service_app
from taskmesh_common.mongo import create_mongo_client, ensure_indexes_forever, mongo_ping
from taskmesh_common.redis import create_redis

from analytics_service.config import Settings

__all__ = ["create_app"]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        mongo = create_mongo_client(
            settings.mongo_url, timeout_seconds=settings.mongo_timeout_seconds
        )
        db = mongo[settings.mongo_db]
        broker = BrokerConnection(settings.amqp_url, name=settings.service_name)
        broker.start()
        indexes_ready = asyncio.Event()
        index_task = asyncio.create_task(ensure_indexes_forever(db, {}, indexes_ready))
        redis = create_redis(settings.redis_url)
        app.state.mongo, app.state.db, app.state.broker = mongo, db, broker
        app.state.redis = redis
        app.state.readiness.add("mongo", lambda: mongo_ping(mongo))
        app.state.readiness.add("rabbitmq", broker.check)
        app.state.readiness.add("redis", redis.ping)
        try:
            yield
        finally:
            index_task.cancel()
            await broker.close()
            await mongo.close()
            await redis.aclose()

    return create_service_app(settings, title="taskmesh analytics", lifespan=lifespan)
