"""Every endpoint and dependency of every service runs on the event loop.

FastAPI runs a plain `def` endpoint or dependency in a worker thread: a thread hop on every
request that uses it (measured on tasks' single-task GET: ~10 % of its throughput). None of
ours blocks, so all of them are `async def`; this names any that is not.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

SERVICES = ("auth", "tasks", "analytics")


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        # An included router: FastAPI keeps the original router (and its routes) beside it.
        router = getattr(route, "original_router", None)
        if router is not None:
            assert not router.dependencies, "router-level dependencies: check them here too"
            yield from _api_routes(router.routes)


def _calls(dependant: Dependant) -> Iterator[Any]:
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def _runs_on_the_loop(call: Any) -> bool:
    if inspect.iscoroutinefunction(call):
        return True
    # A callable instance, e.g. HTTPBearer: its class's __call__ decides.
    return not inspect.isroutine(call) and inspect.iscoroutinefunction(type(call).__call__)


@pytest.mark.parametrize("service", SERVICES)
def test_no_endpoint_or_dependency_runs_in_a_worker_thread(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if "OTEL_SDK_DISABLED" not in os.environ:
        monkeypatch.setenv("OTEL_SDK_DISABLED", "true")  # no exporter for an app never served
    app_module = importlib.import_module(f"{service}_service.api.app")
    config = importlib.import_module(f"{service}_service.config")
    app = app_module.create_app(config.Settings())
    routes = list(_api_routes(app.routes))
    assert len(routes) >= 4, "the service's API routes were found"
    threaded = sorted(
        {
            f"{route.path}: {getattr(call, '__qualname__', repr(call))}"
            for route in routes
            for call in _calls(route.dependant)
            if not _runs_on_the_loop(call)
        }
    )
    assert threaded == [], "make these `async def` (they would run in a worker thread)"
