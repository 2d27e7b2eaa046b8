"""Rate limits against the real Redis: headers, 429s, exactness under concurrency, Redis away."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY
from taskmesh_common.testing import unique_name
from taskmesh_common.testing.tokens import TokenFactory

from .conftest import GatewayFactory, closed_port_url

pytestmark = pytest.mark.integration


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_every_api_answer_carries_the_policy_and_what_is_left(
    gateway: GatewayFactory, tokens: TokenFactory
) -> None:
    async with gateway(rate_limit_user="600/minute", rate_limit_anon="120/minute") as gw:
        first = await gw.client.get("/api/v1/tasks", headers=tokens.auth_header(user_id="u-hdr"))
        second = await gw.client.get("/api/v1/tasks", headers=tokens.auth_header(user_id="u-hdr"))
        anonymous = await gw.client.get("/api/v1/tasks")
    assert first.headers["ratelimit-policy"] == '"user";q=600;w=60'
    assert first.headers["ratelimit"] == '"user";r=599;t=1'
    assert second.headers["ratelimit"].startswith('"user";r=598;t=')
    # Without a token the caller is limited by address, even when it then gets a 401.
    assert anonymous.status_code == 401
    assert anonymous.headers["ratelimit-policy"] == '"anon";q=120;w=60'


async def test_login_and_register_use_the_strict_policy_per_address(
    gateway: GatewayFactory,
) -> None:
    async with gateway(rate_limit_auth="3/minute") as gw:
        answers = [
            await gw.client.post("/api/v1/auth/login", json={}),
            await gw.client.post("/api/v1/auth/register", json={}),
            await gw.client.post("/api/v1/auth/login", json={}),
            await gw.client.post("/api/v1/auth/login", json={}),
        ]
        async with gw.client_from("10.9.9.9") as elsewhere:
            other_address = await elsewhere.post("/api/v1/auth/login", json={})
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0].headers["ratelimit-policy"] == '"auth";q=3;w=60'
    assert other_address.status_code == 200


async def test_a_bursting_user_meets_429_while_another_user_is_unaffected(
    gateway: GatewayFactory, tokens: TokenFactory
) -> None:
    greedy, calm = tokens.auth_header(user_id="greedy"), tokens.auth_header(user_id="calm")
    async with gateway(rate_limit_user="5/minute") as gw:
        burst = [await gw.client.get("/api/v1/tasks", headers=greedy) for _ in range(7)]
        other = await gw.client.get("/api/v1/tasks", headers=calm)
    assert [r.status_code for r in burst] == [200] * 5 + [429] * 2
    refused = burst[-1]
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["status"] == 429
    # One request every 12 s comes back: the next one is due within that.
    assert 1 <= int(refused.headers["retry-after"]) <= 12
    assert refused.headers["ratelimit"].startswith('"user";r=0;t=')
    assert refused.headers["x-request-id"]
    assert other.status_code == 200
    assert other.headers["ratelimit"].startswith('"user";r=4;')


@pytest.mark.parametrize(("policy", "limit"), [("user", 37), ("anon", 23), ("auth", 11)])
async def test_no_policy_admits_more_than_its_limit_under_200_concurrent_requests(
    gateway: GatewayFactory, tokens: TokenFactory, policy: str, limit: int
) -> None:
    # Two gateway replicas sharing one Redis prefix, as in production.
    shared = {
        "redis_prefix": unique_name("gw-shared") + ":",
        f"rate_limit_{policy}": f"{limit}/hour",
    }
    headers = tokens.auth_header(user_id=unique_name("u")) if policy == "user" else {}
    path = "/api/v1/auth/login" if policy == "auth" else "/api/v1/auth/refresh"
    async with gateway(**shared) as one, gateway(**shared) as two:
        clients = [one.client, two.client]
        answers = await asyncio.gather(
            *(clients[i % 2].post(path, headers=headers, json={}) for i in range(200))
        )
    statuses = Counter(a.status_code for a in answers)
    assert statuses == {200: limit, 429: 200 - limit}
    assert all(a.headers["ratelimit-policy"] == f'"{policy}";q={limit};w=3600' for a in answers)


@pytest.fixture
async def silent_redis() -> AsyncIterator[str]:
    """A TCP server that accepts and never answers: a hung Redis."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"redis://127.0.0.1:{port}/0"
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


@pytest.mark.parametrize("where", ["closed port", "hung server"])
async def test_redis_away_fails_open_within_the_bound_and_is_counted(
    gateway: GatewayFactory, tokens: TokenFactory, silent_redis: str, where: str
) -> None:
    url = closed_port_url().replace("http", "redis") if where == "closed port" else silent_redis
    failures = _metric("gateway_redis_failures_total")
    opened = _metric("gateway_ratelimit_decisions_total", policy="user", decision="failed_open")
    async with gateway(redis_url=url, readiness_timeout_seconds=0.5) as gw:
        started = time.perf_counter()
        response = await gw.client.get("/api/v1/tasks", headers=tokens.auth_header())
        elapsed = time.perf_counter() - started
        ready = await gw.client.get("/readyz")
    assert response.status_code == 200
    assert elapsed < 0.6
    assert "ratelimit" not in response.headers
    assert _metric("gateway_redis_failures_total") == failures + 1
    assert (
        _metric("gateway_ratelimit_decisions_total", policy="user", decision="failed_open")
        == opened + 1
    )
    assert ready.status_code == 503
    assert ready.json()["failed"] == ["redis"]


async def test_redis_away_with_fail_closed_answers_503_with_retry_after(
    gateway: GatewayFactory, tokens: TokenFactory
) -> None:
    url = closed_port_url().replace("http", "redis")
    async with gateway(redis_url=url, rate_limit_fail_open=False) as gw:
        response = await gw.client.get("/api/v1/tasks", headers=tokens.auth_header())
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.headers["content-type"] == "application/problem+json"


async def test_allowed_and_denied_decisions_are_counted_by_policy(
    gateway: GatewayFactory, tokens: TokenFactory
) -> None:
    allowed = _metric("gateway_ratelimit_decisions_total", policy="user", decision="allowed")
    denied = _metric("gateway_ratelimit_decisions_total", policy="user", decision="denied")
    headers = tokens.auth_header(user_id=unique_name("u"))
    async with gateway(rate_limit_user="2/minute") as gw:
        for _ in range(3):
            await gw.client.get("/api/v1/tasks", headers=headers)
        exposed = (await gw.client.get("/metrics")).text
    assert (
        _metric("gateway_ratelimit_decisions_total", policy="user", decision="allowed")
        == allowed + 2
    )
    assert (
        _metric("gateway_ratelimit_decisions_total", policy="user", decision="denied") == denied + 1
    )
    assert "gateway_ratelimit_decisions_total" in exposed
