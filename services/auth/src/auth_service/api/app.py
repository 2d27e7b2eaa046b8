"""The composition root of the auth service."""

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
from taskmesh_common.mongo import create_mongo_client, mongo_ping
from taskmesh_common.redis import create_redis
from taskmesh_common.security import RevocationCheck, Revoker

from auth_service.adapters.key_wrapping import KeyWrapper
from auth_service.adapters.login_limiter import LoginLimiter
from auth_service.adapters.refresh_tokens import RefreshTokenRepository
from auth_service.adapters.signing_keys import KeyStore
from auth_service.adapters.users import UserRepository
from auth_service.api import admin, browser_session, routes
from auth_service.api.errors import install_auth_errors
from auth_service.bootstrap import (
    build_verifier,
    check_signing_keys,
    prepare_indexes_forever,
    start_up_forever,
)
from auth_service.config import Settings
from auth_service.domain.passwords import Passwords
from auth_service.service_layer.accounts import Accounts
from auth_service.service_layer.clock import utcnow
from auth_service.service_layer.hashing import Hashing
from auth_service.service_layer.sessions import Sessions

__all__ = ["create_app"]


def create_app(settings: Settings | None = None) -> FastAPI:
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
        indexes_ready = asyncio.Event()
        index_task = asyncio.create_task(prepare_indexes_forever(db, indexes_ready))
        redis = create_redis(settings.redis_url)

        access_ttl = settings.access_token_ttl_seconds
        keys = KeyStore(
            db["signing_keys"],
            reload_seconds=settings.signing_key_reload_seconds,
            retire_grace=_seconds(access_ttl + settings.jwt_leeway_seconds),
            indexes_ready=indexes_ready,
            ready_timeout=settings.mongo_timeout_seconds,
            wrapper=KeyWrapper(settings.key_encryption_key_bytes()),
        )
        # Refuses to start when the stored keys cannot be opened with the configured key.
        await check_signing_keys(keys, timeout=settings.mongo_timeout_seconds)
        users = UserRepository(db["users"])
        refresh_tokens = RefreshTokenRepository(db["refresh_tokens"])
        hashing = Hashing(
            Passwords(
                time_cost=settings.argon2_time_cost,
                memory_kib=settings.argon2_memory_kib,
                parallelism=settings.argon2_parallelism,
            ),
            settings.argon2_concurrency,
            queue_limit=settings.argon2_queue_limit,
            queue_seconds=settings.argon2_queue_seconds,
        )
        publisher = EventPublisher(broker, settings.events_exchange)
        relay = OutboxRelay(
            db,
            ["users"],
            publisher,
            service="auth",
            poll_interval=settings.outbox_poll_seconds,
        )
        # A revocation outlives every token issued before it: lifetime plus clock leeway.
        revoker = Revoker(
            redis,
            prefix=settings.redis_prefix,
            ttl_seconds=access_ttl + settings.jwt_leeway_seconds + 60,
        )
        accounts = Accounts(
            users=users,
            refresh_tokens=refresh_tokens,
            hashing=hashing,
            revoker=revoker,
            on_events=functools.partial(relay.wrote, "users"),
        )
        sessions = Sessions(
            users=users,
            refresh_tokens=refresh_tokens,
            keys=keys,
            hashing=hashing,
            limiter=LoginLimiter(
                redis,
                prefix=settings.redis_prefix,
                max_failures=settings.login_max_failures,
                max_failures_per_client=settings.login_max_failures_per_client,
                max_failures_per_account=settings.login_max_failures_per_account,
                window_seconds=settings.login_failure_window_seconds,
            ),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            access_ttl=_seconds(access_ttl),
            refresh_ttl=_seconds(settings.refresh_token_ttl_seconds),
            revoker=revoker,
            family_lifetime=_seconds(settings.refresh_absolute_lifetime_seconds),
        )
        verifier = build_verifier(settings, keys)
        state = app.state
        state.mongo, state.db, state.broker, state.redis = mongo, db, broker, redis
        state.keys, state.accounts, state.sessions = keys, accounts, sessions
        state.verifier, state.relay, state.publisher = verifier, relay, publisher
        state.revocations = RevocationCheck(
            redis,
            prefix=settings.redis_prefix,
            timeout_seconds=settings.revocation_timeout_seconds,
            fail_open=settings.revocation_fail_open,
        )
        state.readiness.add("mongo", lambda: mongo_ping(mongo))
        state.readiness.add("rabbitmq", broker.check)
        state.readiness.add("redis", redis.ping)
        state.readiness.add("signing_key", lambda: keys.current(utcnow()))

        async def start_relay() -> None:
            # After auth's indexes: on DocumentDB, index builds racing in one database deadlock.
            await indexes_ready.wait()
            relay.start()

        background = [
            index_task,
            asyncio.create_task(start_up_forever(settings, indexes_ready, keys, accounts)),
            asyncio.create_task(start_relay()),
        ]
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await relay.stop()
            await publisher.close()
            await verifier.aclose()
            await broker.close()
            await mongo.close()
            await redis.aclose()

    app = create_service_app(
        settings,
        title="taskmesh auth",
        description="Accounts, access and refresh tokens, signing keys (JWKS).",
        lifespan=lifespan,
    )
    install_auth_errors(app)
    app.include_router(routes.router)
    app.include_router(admin.router)
    app.include_router(browser_session.router)
    app.include_router(routes.jwks_router)
    return app


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)
