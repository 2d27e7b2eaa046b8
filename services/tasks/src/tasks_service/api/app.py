"""The composition root of the tasks service."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from taskmesh_common.amqp import BrokerConnection
from taskmesh_common.app import create_service_app
from taskmesh_common.events import EventPublisher, OutboxRelay
from taskmesh_common.mongo import (
    create_mongo_client,
    mongo_ping,
)
from taskmesh_common.redis import create_redis
from taskmesh_common.security import RevocationCheck, TokenVerifier

from tasks_service.adapters.idempotency import KEYS_COLLECTION, IdempotencyKeys
from tasks_service.adapters.indexes import prepare_indexes_forever
from tasks_service.adapters.removed_owners import REMOVED_OWNERS_COLLECTION, RemovedOwners
from tasks_service.adapters.repository import COLLECTION, TaskRepository
from tasks_service.api.errors import install_task_errors
from tasks_service.api.routes import router
from tasks_service.config import Settings
from tasks_service.consumers import build_consumer
from tasks_service.service_layer.tasks import Tasks

__all__ = ["create_app"]

_CONSUMER_START_SECONDS = 3.0


def create_app(
    settings: Settings | None = None,
    *,
    verifier: TokenVerifier | None = None,
    run_relay: bool = True,
) -> FastAPI:
    """The app; `verifier` replaces the JWKS-backed one (tests mint their own tokens).

    `run_relay=False` leaves recorded events unpublished, as if the process died right
    after each write (the crash test starts a relay of its own afterwards).
    """
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        mongo = create_mongo_client(
            settings.mongo_url,
            timeout_seconds=settings.mongo_timeout_seconds,
            max_pool_size=settings.mongo_max_pool_size,
        )
        db = mongo[settings.mongo_db]
        broker = BrokerConnection(settings.amqp_url, name=settings.service_name)
        broker.start()
        token_verifier = verifier or TokenVerifier.from_settings(settings)
        indexes_ready = asyncio.Event()
        index_task = asyncio.create_task(prepare_indexes_forever(db, indexes_ready))
        app.state.mongo, app.state.db, app.state.broker = mongo, db, broker
        app.state.verifier = token_verifier
        redis = create_redis(settings.redis_url)
        # Not a readiness check: reads go on without Redis; writes follow
        # revocation_fail_open, admin decisions are refused.
        app.state.revocations = RevocationCheck(
            redis,
            prefix=settings.redis_prefix,
            timeout_seconds=settings.revocation_timeout_seconds,
            fail_open=settings.revocation_fail_open,
        )
        app.state.indexes_ready = indexes_ready
        publisher = EventPublisher(broker, settings.events_exchange)
        relay = OutboxRelay(
            db,
            [COLLECTION],
            publisher,
            service=settings.service_name,
        )
        repository = TaskRepository(
            db[COLLECTION], on_write=functools.partial(relay.wrote, COLLECTION)
        )
        removed_owners = RemovedOwners(db[REMOVED_OWNERS_COLLECTION])
        tasks = Tasks(
            repository,
            IdempotencyKeys(db[KEYS_COLLECTION]),
            removed_owners,
            key_lifetime=timedelta(seconds=settings.idempotency_key_seconds),
        )
        consumer = build_consumer(broker, settings, db, tasks)
        app.state.publisher, app.state.relay, app.state.consumer = publisher, relay, consumer
        app.state.repository, app.state.tasks = repository, tasks
        if run_relay:
            relay.start()
        # Bounded: with the broker away the service still starts; the consumer keeps trying.
        await consumer.start(start_timeout=_CONSUMER_START_SECONDS)
        app.state.readiness.add("mongo", lambda: mongo_ping(mongo))
        app.state.readiness.add("rabbitmq", broker.check)
        try:
            yield
        finally:
            index_task.cancel()
            await consumer.stop()
            await repository.close()
            await removed_owners.close()
            await tasks.close()
            await relay.stop()
            await publisher.close()
            if verifier is None:
                await token_verifier.aclose()
            await broker.close()
            await mongo.close()
            await redis.aclose()

    app = create_service_app(settings, title="taskmesh tasks", lifespan=lifespan)
    install_task_errors(app)
    app.include_router(router)
    return app
