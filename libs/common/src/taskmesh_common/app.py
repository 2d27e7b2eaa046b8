"""The one way a service's FastAPI app is put together."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from taskmesh_common.client_address import ClientAddressMiddleware, TrustedProxies
from taskmesh_common.errors import install_error_handlers
from taskmesh_common.health import ReadinessRegistry, health_router
from taskmesh_common.internal import internal_app
from taskmesh_common.logging import configure_logging
from taskmesh_common.middleware import RequestContextMiddleware
from taskmesh_common.openapi import document_problems
from taskmesh_common.settings import ServiceSettings
from taskmesh_common.telemetry import RouteOf, SpanNamedByRoute, fastapi_telemetry, setup_telemetry

__all__ = ["Lifespan", "create_service_app"]

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_service_app(
    settings: ServiceSettings,
    *,
    title: str,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[Any]] | None = None,
    description: str = "",
    version: str = "1.0.0",
    route_of: RouteOf | None = None,
) -> FastAPI:
    """A FastAPI app with logging, telemetry, problem+json errors, request ids and health;
    its metrics and detailed readiness are `app.state.internal`, the internal listener's app.

    The service's `lifespan` opens its clients, keeps them on `app.state` and registers
    readiness checks on `app.state.readiness`. `route_of` names the spans of requests the
    router never sees (see `SpanNamedByRoute`).
    """
    configure_logging(settings.service_name, settings.log_level)
    setup_telemetry(settings.service_name)
    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
        # A slash redirect's Location is built from the Host the service was reached by, which
        # behind the gateway is the service's internal address; `/x/` is a plain 404 instead.
        redirect_slashes=False,
        # Operation ids are the handlers' names (`create_task`, `login`): what generated
        # clients call their functions.
        generate_unique_id_function=_operation_id,
        telemetry=fastapi_telemetry(),
    )
    app.state.settings = settings
    _document_problems(app)
    app.state.readiness = ReadinessRegistry(settings.readiness_timeout_seconds)
    install_error_handlers(app)
    app.include_router(health_router())
    # /metrics and detailed readiness: never on the public port (taskmesh_common.internal).
    app.state.internal = internal_app(app.state.readiness)
    app.add_middleware(RequestContextMiddleware, service=settings.service_name)
    if route_of is not None:
        app.add_middleware(SpanNamedByRoute, route_of=route_of)
    proxies = TrustedProxies(settings.trusted_proxies)
    if proxies:
        # Outermost: everything below reads the client the proxies vouch for.
        app.add_middleware(ClientAddressMiddleware, proxies=proxies)
    return app


def _operation_id(route: APIRoute) -> str:
    return route.name


def _document_problems(app: FastAPI) -> None:
    """The app's OpenAPI document, with its errors as problem details (see openapi.py)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(
                generate(), with_path_params=(404,), with_body=(400,)
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
