"""The gateway as a client meets it: ids, unknown routes, body limits, CORS, limits, one OpenAPI."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from taskmesh_common.testing import unique_name
from taskmesh_local import RunningServices, start_services

RATE_LIMIT = re.compile(r'^"user";r=\d+;t=\d+$')


async def test_request_id_is_echoed_and_made_when_absent(api):
    mine = f"e2e-{uuid.uuid4()}"
    echoed = await api.client.get("/.well-known/jwks.json", headers={"X-Request-ID": mine})
    assert echoed.headers["X-Request-ID"] == mine
    made = await api.client.get("/.well-known/jwks.json")
    assert made.headers["X-Request-ID"]
    other = await api.client.get("/.well-known/jwks.json")
    assert other.headers["X-Request-ID"] != made.headers["X-Request-ID"]


async def test_request_id_comes_back_on_proxied_answers_and_errors(api, problem):
    user = await api.new_user()
    mine = f"e2e-{uuid.uuid4()}"
    proxied = await api.client.get("/api/v1/tasks", headers=user.headers | {"X-Request-ID": mine})
    assert proxied.headers["X-Request-ID"] == mine
    missing = await api.client.get(
        f"/api/v1/tasks/{uuid.uuid4()}", headers=user.headers | {"X-Request-ID": mine}
    )
    problem(missing, 404)
    assert missing.headers["X-Request-ID"] == mine


@pytest.mark.parametrize("path", ["/nope", "/api/v2/tasks", "/api/v1/tasksx", "/api/v1/"])
async def test_unknown_routes_are_404_problems(api, problem, path):
    problem(await api.client.get(path), 404)


async def test_a_body_over_one_mebibyte_is_refused_with_413(api, problem):
    user = await api.new_user()
    huge = b'{"title": "' + b"x" * (1024 * 1024 + 10) + b'"}'
    response = await api.client.post(
        "/api/v1/tasks", content=huge, headers=user.headers | {"Content-Type": "application/json"}
    )
    problem(response, 413)


async def test_cors_preflight_is_answered_for_an_allowed_origin_only(api):
    ask = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    allowed = await api.client.options(
        "/api/v1/tasks", headers=ask | {"Origin": "http://localhost:3000"}
    )
    assert allowed.status_code in (200, 204), allowed.text
    assert allowed.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert "POST" in allowed.headers["Access-Control-Allow-Methods"]
    assert "authorization" in allowed.headers["Access-Control-Allow-Headers"].lower()

    foreign = await api.client.options(
        "/api/v1/tasks", headers=ask | {"Origin": "https://evil.example.com"}
    )
    assert foreign.headers.get("Access-Control-Allow-Origin") != "https://evil.example.com"


async def test_responses_carry_ratelimit_headers_and_security_headers(api):
    user = await api.new_user()
    response = await api.client.get("/api/v1/tasks", headers=user.headers)
    assert response.headers["RateLimit-Policy"] == '"user";q=600;w=60'
    assert RATE_LIMIT.match(response.headers["RateLimit"]), response.headers["RateLimit"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    anonymous = await api.client.get("/.well-known/jwks.json")
    assert anonymous.headers["RateLimit-Policy"].startswith('"anon";q=')


async def test_openapi_lists_the_public_operations_of_all_three_services(api):
    response = await api.client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    expected = {
        ("/api/v1/auth/register", "post"),
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/refresh", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/auth/logout-all", "post"),
        ("/api/v1/auth/password", "post"),
        ("/api/v1/auth/me", "get"),
        ("/api/v1/auth/me", "delete"),
        ("/api/v1/auth/users", "get"),
        ("/api/v1/tasks", "post"),
        ("/api/v1/tasks", "get"),
        ("/api/v1/analytics/summary", "get"),
        ("/api/v1/analytics/timeline", "get"),
        ("/api/v1/analytics/overview", "get"),
    }
    listed = {(path, method) for path, item in paths.items() for method in item}
    assert expected <= listed, expected - listed
    task_item = next(p for p in paths if p.startswith("/api/v1/tasks/{"))
    assert {"get", "patch", "delete"} <= set(paths[task_item])
    assert any(p.startswith("/api/v1/auth/users/{") and "patch" in paths[p] for p in paths)


# A second gateway in front of the same services, with a tiny per-user limit.
@pytest.fixture(scope="module")
def strict_gateway(suite) -> Iterator[RunningServices]:
    env = suite.env | {
        "TASKMESH_RATE_LIMIT_USER": "5/minute",
        "TASKMESH_REDIS_PREFIX": f"{unique_name('strict')}:",
        "TASKMESH_AUTH_URL": suite.urls["auth"],
        "TASKMESH_TASKS_URL": suite.urls["tasks"],
        "TASKMESH_ANALYTICS_URL": suite.urls["analytics"],
    }
    with start_services(env, names=("gateway",), timeout=60) as running:
        yield running


@pytest.fixture
async def strict(strict_gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=strict_gateway.gateway_url, timeout=15) as client:
        yield client


async def test_one_users_burst_meets_429_while_another_user_is_unaffected(api, strict, problem):
    greedy, calm = await api.new_user(), await api.new_user()
    burst = await asyncio.gather(
        *(strict.get("/api/v1/tasks", headers=greedy.headers) for _ in range(12))
    )
    statuses = [r.status_code for r in burst]
    assert statuses.count(200) == 5, statuses
    assert statuses.count(429) == 7, statuses
    refused = next(r for r in burst if r.status_code == 429)
    problem(refused, 429)
    assert int(refused.headers["Retry-After"]) > 0
    assert refused.headers["RateLimit-Policy"] == '"user";q=5;w=60'

    other = await strict.get("/api/v1/tasks", headers=calm.headers)
    assert other.status_code == 200
    assert other.headers["RateLimit"].startswith('"user";r=4;')
