"""Rate limits against the real Redis: headers, 429s, exactness under concurrency, Redis away."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from gateway_service.adapters.ratelimiter import RateLimiter, RedisUnavailable, create_limiter_redis
from gateway_service.domain.ratelimit import Decision, Rate
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from taskmesh_common.testing import unique_name
from taskmesh_common.testing.servers import BackingServers
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
        exposed = (await gw.internal.get("/metrics")).text
    assert (
        _metric("gateway_ratelimit_decisions_total", policy="user", decision="allowed")
        == allowed + 2
    )
    assert (
        _metric("gateway_ratelimit_decisions_total", policy="user", decision="denied") == denied + 1
    )
    assert "gateway_ratelimit_decisions_total" in exposed


@pytest.fixture
async def limiter(backing_servers: BackingServers) -> AsyncIterator[RateLimiter]:
    redis = create_limiter_redis(backing_servers.redis_url, 0.25)
    limiter = RateLimiter(
        redis,
        prefix=unique_name("rl") + ":",
        timeout_seconds=0.25,
        backoff_seconds=1.0,
        fail_open=True,
    )
    await limiter.warm_up()
    yield limiter
    await limiter.aclose()


async def _script_calls(url: str) -> int:
    admin = Redis.from_url(url)
    try:
        stats = await admin.info("commandstats")
    finally:
        await admin.aclose()
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def test_requests_arriving_together_share_one_redis_call_and_keep_their_order(
    limiter: RateLimiter, backing_servers: BackingServers
) -> None:
    rate = Rate(3, 60)
    batches = _metric("gateway_ratelimit_batch_size_count")
    calls = await _script_calls(backing_servers.redis_url)
    decisions = await asyncio.gather(*(limiter.acquire("user", "same", rate) for _ in range(5)))
    # Five requests of one user in one turn of the loop: one script call, and inside it
    # each request sees the ones before it, so exactly the quota passes.
    assert await _script_calls(backing_servers.redis_url) == calls + 1
    assert _metric("gateway_ratelimit_batch_size_count") == batches + 1
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0, 0]
    assert 19 < decisions[-1].reset_seconds <= 20  # the next of 3/minute is due in 20 s


async def test_a_batch_decides_each_identity_by_its_own_rate(limiter: RateLimiter) -> None:
    tight, loose = Rate(1, 60), Rate(100, 60)
    decisions = await asyncio.gather(
        limiter.acquire("user", "tight", tight),
        limiter.acquire("anon", "10.0.0.1", loose),
        limiter.acquire("user", "tight", tight),
        limiter.acquire("anon", "10.0.0.1", loose),
    )
    assert [(d.policy, d.allowed, d.remaining) for d in decisions] == [
        ("user", True, 0),
        ("anon", True, 99),
        ("user", False, 0),
        ("anon", True, 98),
    ]


async def test_a_request_cancelled_while_waiting_leaves_the_others_their_answers(
    limiter: RateLimiter,
) -> None:
    rate = Rate(10, 60)
    waiting = [asyncio.create_task(limiter.acquire("user", "mixed", rate)) for _ in range(3)]
    await asyncio.sleep(0)  # all three have asked; their call is not answered yet
    waiting[1].cancel()
    first, gone, last = await asyncio.gather(*waiting, return_exceptions=True)
    assert isinstance(gone, asyncio.CancelledError)
    assert isinstance(first, Decision) and first.allowed and first.remaining == 9
    # The cancelled request's token was spent inside the same call.
    assert isinstance(last, Decision) and last.allowed and last.remaining == 7


async def test_a_batch_larger_than_the_ceiling_is_split(backing_servers: BackingServers) -> None:
    limiter = RateLimiter(
        create_limiter_redis(backing_servers.redis_url, 0.25),
        prefix=unique_name("rl") + ":",
        timeout_seconds=0.25,
        backoff_seconds=1.0,
        fail_open=True,
        max_batch=4,
    )
    await limiter.warm_up()
    try:
        calls = await _script_calls(backing_servers.redis_url)
        decisions = await asyncio.gather(
            *(limiter.acquire("user", "split", Rate(6, 60)) for _ in range(10))
        )
        assert await _script_calls(backing_servers.redis_url) == calls + 3
    finally:
        await limiter.aclose()
    # The three calls run side by side, in whatever order Redis gets them; the quota holds.
    assert Counter(d.allowed for d in decisions) == {True: 6, False: 4}


async def test_every_request_of_a_failed_batch_hears_redis_is_unavailable(
    silent_redis: str,
) -> None:
    limiter = RateLimiter(
        create_limiter_redis(silent_redis, 0.1),
        prefix="rl:",
        timeout_seconds=0.1,
        backoff_seconds=1.0,
        fail_open=True,
    )
    await limiter.warm_up()  # fails (nothing answers), as a gateway's start would
    failures = _metric("gateway_redis_failures_total")
    try:
        outcomes = await asyncio.gather(
            *(limiter.acquire("user", f"u{i}", Rate(5, 60)) for i in range(4)),
            return_exceptions=True,
        )
    finally:
        await limiter.aclose()
    assert all(isinstance(o, RedisUnavailable) for o in outcomes)
    assert _metric("gateway_redis_failures_total") == failures + 1  # one call failed
