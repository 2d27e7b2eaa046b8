"""The app every service is built on: problem+json, request ids, health, metrics."""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError
from taskmesh_common.app import create_service_app
from taskmesh_common.errors import NotFound, register_problem
from taskmesh_common.logging import JsonFormatter
from taskmesh_common.server import GC_YOUNG_THRESHOLD, settle_collector_after_startup
from taskmesh_common.settings import ServiceSettings


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    title: str


class WidgetMissing(Exception):
    pass


def make_app(checks: dict[str, object] | None = None) -> FastAPI:
    settings = ServiceSettings(service_name="unit", readiness_timeout_seconds=0.2)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for name, outcome in (checks or {}).items():

            async def check(outcome: object = outcome) -> None:
                if isinstance(outcome, Exception):
                    raise outcome

            app.state.readiness.add(name, check)
        yield

    app = create_service_app(settings, title="unit", lifespan=lifespan)
    register_problem(app, WidgetMissing, 404, "widget-not-found")

    @app.post("/things")
    async def create(body: Body) -> dict[str, str]:
        return {"title": body.title}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    @app.get("/missing")
    async def missing() -> None:
        raise NotFound("no such thing")

    @app.get("/widget")
    async def widget() -> None:
        raise WidgetMissing("widget 7 is gone")

    return app


@asynccontextmanager
async def client_for(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


async def test_validation_errors_are_422_problems_naming_the_fields() -> None:
    async with client_for(make_app()) as client:
        response = await client.post("/things", json={"title": {"$gt": ""}, "extra": 1})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 422 and body["type"].endswith("validation-error")
    locs = {tuple(e["loc"]) for e in body["errors"]}
    assert ("body", "title") in locs and ("body", "extra") in locs
    assert "$gt" not in response.text  # the input is not echoed back


async def test_unexpected_errors_are_500_problems_without_internals() -> None:
    async with client_for(make_app()) as client:
        response = await client.get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "hunter2" not in response.text and "RuntimeError" not in response.text


async def test_unknown_routes_and_domain_errors_are_problems() -> None:
    async with client_for(make_app()) as client:
        unknown = await client.get("/nope")
        missing = await client.get("/missing")
        widget = await client.get("/widget")
    assert unknown.status_code == 404 and unknown.json()["title"] == "Not Found"
    assert missing.json()["detail"] == "no such thing"
    assert widget.status_code == 404 and widget.json()["type"].endswith("widget-not-found")


async def test_request_id_is_echoed_when_safe_and_made_otherwise() -> None:
    async with client_for(make_app()) as client:
        echoed = await client.get("/healthz", headers={"X-Request-ID": "req-123"})
        made = await client.get("/healthz")
        forged = await client.get("/healthz", headers={"X-Request-ID": "a\nb" * 100})
        problem = await client.get("/missing", headers={"X-Request-ID": "req-9"})
    assert echoed.headers["x-request-id"] == "req-123"
    assert len(made.headers["x-request-id"]) == 32
    assert forged.headers["x-request-id"] != "a\nb" * 100
    assert problem.json()["request_id"] == "req-9"


async def test_readyz_is_503_naming_the_failed_dependency() -> None:
    app = make_app({"mongo": None, "redis": ConnectionError("refused")})
    async with client_for(app) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["redis"]
    assert body["checks"]["mongo"]["ok"] is True
    assert "redis" in body["detail"]


async def test_readyz_names_what_is_down_but_logs_the_error_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    leak = "refused by mongodb://root:hunter2@db.internal:27017"
    app = make_app({"mongo": ConnectionError(leak), "redis": None})
    async with client_for(app) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    body = response.json()
    assert body["failed"] == ["mongo"]
    assert body["checks"]["mongo"] == {"ok": False}
    for secret in ("hunter2", "db.internal", "27017", "ConnectionError", "refused"):
        assert secret not in response.text
    # The detail is for operators, in the service's log.
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    logged = [line for line in lines if line["message"] == "readiness check failed"]
    assert [(line["check"], leak in line["error"]) for line in logged] == [("mongo", True)]


async def test_a_trailing_slash_is_not_redirected_to_the_address_the_app_was_reached_by() -> None:
    async with client_for(make_app()) as client:
        response = await client.post(
            "/things/", json={"title": "x"}, headers={"Host": "tasks.internal:8002"}
        )
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "location" not in response.headers
    assert "tasks.internal" not in response.text


async def test_readyz_is_200_when_every_dependency_answers() -> None:
    async with client_for(make_app({"mongo": None})) as client:
        response = await client.get("/readyz")
        health = await client.get("/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ready"
    assert health.json() == {"status": "ok"}


async def test_metrics_count_requests_by_route_template_and_status() -> None:
    app = make_app()
    internal = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app.state.internal), base_url="http://internal"
    )
    async with client_for(app) as client, internal:
        await client.get("/missing")
        assert (await client.get("/metrics")).status_code == 404
        metrics = await internal.get("/metrics")
    assert 'route="/missing"' in metrics.text
    assert 'service="unit"' in metrics.text and 'status="404"' in metrics.text
    assert "http_request_duration_seconds_bucket" in metrics.text


def test_placeholder_secrets_are_refused_outside_development() -> None:
    class WithSecret(ServiceSettings):
        signing_secret: SecretStr = SecretStr("changeme")

    assert WithSecret(env="development").signing_secret.get_secret_value() == "changeme"
    with pytest.raises(ValidationError, match="placeholder"):
        WithSecret(env="production")
    real = WithSecret(
        env="production",
        signing_secret=SecretStr("s3cr3t-value-x"),
        mongo_url="mongodb://tasks:s3cr3t-db@db.internal:27017",
        amqp_url="amqps://tasks:s3cr3t-mq@mq.internal:5671/",
        redis_url="rediss://:s3cr3t-cache@cache.internal:6380/0",
    )
    assert real.env == "production"


def test_settings_are_read_from_taskmesh_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKMESH_MONGO_URL", "mongodb://db.internal:27017")
    monkeypatch.setenv("TASKMESH_PORT", "9001")
    settings = ServiceSettings()
    assert settings.mongo_url == "mongodb://db.internal:27017" and settings.port == 9001


def test_log_lines_are_json_with_service_and_extras() -> None:
    record = logging.makeLogRecord(
        {"name": "x", "levelname": "WARNING", "msg": "hello %s", "args": ("world",), "order": 7}
    )
    line = json.loads(JsonFormatter("tasks").format(record))
    assert line["message"] == "hello world"
    assert line["service"] == "tasks" and line["level"] == "warning" and line["order"] == 7


def test_database_prefix_keeps_whole_suites_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    class TasksSettings(ServiceSettings):
        mongo_db: str = "tasks"

    monkeypatch.setenv("TASKMESH_MONGO_DB_PREFIX", "run7_")
    assert TasksSettings().mongo_db == "run7_tasks"
    monkeypatch.delenv("TASKMESH_MONGO_DB_PREFIX")
    assert TasksSettings().mongo_db == "tasks"


async def test_a_served_app_freezes_what_start_up_left_alive_and_keeps_its_lifespan() -> None:
    app = make_app({"db": None})
    settle_collector_after_startup(app)
    gc.unfreeze()
    thresholds = gc.get_threshold()
    try:
        async with client_for(app) as client:
            assert gc.get_freeze_count() > 10_000, "modules and the app are frozen"
            assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, *thresholds[1:])
            ready = await client.get("/readyz")
            assert ready.status_code == 200 and "db" in ready.json()["checks"]
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
