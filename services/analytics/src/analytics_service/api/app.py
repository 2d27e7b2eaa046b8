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
from taskmesh_common.security import RevocationCheck, TokenVerifier

from analytics_service.adapters.cache import SummaryCache
from analytics_service.adapters.queries import StatisticsReader
from analytics_service.adapters.store import ProjectionStore
from analytics_service.api.errors import install_analytics_errors
from analytics_service.api.routes import router
from analytics_service.config import Settings
from analytics_service.consumers import build_consumer
from analytics_service.service_layer.handlers import Projector

__all__ = ["create_app"]


def create_app(
    settings: Settings | None = None, *, verifier: TokenVerifier | None = None
) -> FastAPI:
    """The app; `verifier` replaces the JWKS-fetching one (tests mint their own tokens)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        mongo = create_mongo_client(
            settings.mongo_url,
            timeout_seconds=settings.mongo_timeout_seconds,
            max_pool_size=settings.mongo_max_pool_size,
        )
        db = mongo[settings.mongo_db]
        store = ProjectionStore(db)
        broker = BrokerConnection(settings.amqp_url, name=settings.service_name)
        broker.start()
        indexes_ready = asyncio.Event()
        index_task = asyncio.create_task(
            ensure_indexes_forever(
                db, store.indexes(), indexes_ready, retired=store.retired_indexes()
            )
        )
        redis = create_redis(settings.redis_url)
        cache = (
            SummaryCache(
                redis, prefix=settings.redis_prefix, ttl_seconds=settings.summary_cache_seconds
            )
            if settings.summary_cache_seconds > 0
            else None
        )
        token_verifier = verifier or TokenVerifier.from_settings(settings)
        consumer = build_consumer(settings, broker, db, Projector(store, cache))
        app.state.mongo, app.state.db, app.state.broker = mongo, db, broker
        app.state.redis, app.state.verifier, app.state.consumer = redis, token_verifier, consumer
        app.state.store, app.state.summary_cache = store, cache
        app.state.indexes_ready = indexes_ready
        # The overview is an admin decision: a revoked (say demoted) admin token is refused.
        app.state.revocations = RevocationCheck(
            redis,
            prefix=settings.redis_prefix,
            timeout_seconds=settings.revocation_timeout_seconds,
            fail_open=settings.revocation_fail_open,
        )
        app.state.reader = StatisticsReader(store)
        app.state.readiness.add("mongo", lambda: mongo_ping(mongo))
        app.state.readiness.add("rabbitmq", broker.check)
        app.state.readiness.add("redis", redis.ping)
        # Waits a little for the broker, then keeps trying in the background: the API
        # serves (from what is already projected) while RabbitMQ is away.
        await consumer.start(start_timeout=5.0)
        try:
            yield
        finally:
            await consumer.stop()
            index_task.cancel()
            if verifier is None:
                await token_verifier.aclose()
            await broker.close()
            await mongo.close()
            await redis.aclose()

    app = create_service_app(settings, title="taskmesh analytics", lifespan=lifespan)
    install_analytics_errors(app)
    app.include_router(router)
    return app
