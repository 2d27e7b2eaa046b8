"""Circuit breakers, timeouts and retries against real (and really dead) upstreams."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY
from taskmesh_common.testing.tokens import TokenFactory

from .conftest import FakeService, GatewayFactory, closed_port_url

pytestmark = pytest.mark.integration


def _breaker_metric(group: str) -> float | None:
    # Labelled `upstream` for tasks and analytics; auth has two groups (auth, auth-credentials).
    return REGISTRY.get_sample_value("gateway_breaker_state", {"upstream": group})


async def test_breaker_opens_after_5xx_then_answers_503_at_once_without_calling_upstream(
    gateway: GatewayFactory, tokens: TokenFactory, fakes: dict[str, FakeService]
) -> None:
    auth = tokens.auth_header()
    path = "/api/v1/analytics/failing"
    async with gateway(breaker_fail_max=3, breaker_reset_timeout_seconds=30) as gw:
        failures = [await gw.client.get(f"{path}?status=500", headers=auth) for _ in range(3)]
        calls = fakes["analytics"].calls[path]
        started = time.perf_counter()
        refused = await gw.client.get(f"{path}?status=500", headers=auth)
        elapsed = time.perf_counter() - started
        ready = await gw.internal.get("/readyz")
        tasks_still_fine = await gw.client.get("/api/v1/tasks", headers=auth)
    # The upstream's own 5xx answers still reach the client while they are being counted.
    assert [f.status_code for f in failures] == [500, 500, 500]
    assert failures[0].json()["service"] == "analytics"
    assert refused.status_code == 503
    assert refused.headers["content-type"] == "application/problem+json"
    assert 25 <= int(refused.headers["retry-after"]) <= 30
    assert elapsed < 0.1
    assert fakes["analytics"].calls[path] == calls
    assert _breaker_metric("analytics") == 2
    # Readiness is Redis only: an open breaker shows in the details, not as "not ready".
    assert ready.status_code == 200
    assert ready.json()["upstreams"]["analytics"]["state"] == "open"
    assert ready.json()["upstreams"]["tasks"]["state"] == "closed"
    assert tasks_still_fine.status_code == 200


async def test_4xx_answers_never_open_the_breaker(
    gateway: GatewayFactory, tokens: TokenFactory
) -> None:
    auth = tokens.auth_header()
    async with gateway(breaker_fail_max=2) as gw:
        answers = [
            await gw.client.get(f"/api/v1/tasks/x?status={s}", headers=auth)
            for s in (404, 409, 422, 429, 404, 400)
        ]
        ready = await gw.internal.get("/readyz")
    assert [a.status_code for a in answers] == [404, 409, 422, 429, 404, 400]
    assert ready.json()["upstreams"]["tasks"] == {"state": "closed", "failures": 0}


async def test_half_open_probe_success_closes_the_breaker(
    gateway: GatewayFactory, tokens: TokenFactory
) -> None:
    auth = tokens.auth_header()
    async with gateway(breaker_fail_max=2, breaker_reset_timeout_seconds=0.5) as gw:
        for _ in range(2):
            await gw.client.get("/api/v1/tasks?status=503", headers=auth)
        assert (await gw.client.get("/api/v1/tasks", headers=auth)).status_code == 503
        await asyncio.sleep(0.6)
        probe = await gw.client.get("/api/v1/tasks", headers=auth)
        after = await gw.client.get("/api/v1/tasks", headers=auth)
        ready = await gw.internal.get("/readyz")
    assert probe.status_code == 200
    assert after.status_code == 200
    assert ready.json()["upstreams"]["tasks"]["state"] == "closed"
    assert _breaker_metric("tasks") == 0


async def test_a_failed_half_open_probe_opens_the_breaker_again(
    gateway: GatewayFactory, tokens: TokenFactory
) -> None:
    auth = tokens.auth_header()
    async with gateway(breaker_fail_max=2, breaker_reset_timeout_seconds=0.5) as gw:
        for _ in range(2):
            await gw.client.get("/api/v1/tasks?status=500", headers=auth)
        await asyncio.sleep(0.6)
        probe = await gw.client.get("/api/v1/tasks?status=500", headers=auth)
        next_one = await gw.client.get("/api/v1/tasks", headers=auth)
    assert probe.status_code == 500
    assert next_one.status_code == 503
    assert next_one.headers["retry-after"] == "1"


async def test_a_stopped_service_gives_fast_503s_while_others_keep_working(
    gateway: GatewayFactory, tokens: TokenFactory
) -> None:
    auth = tokens.auth_header()
    async with gateway(tasks_url=closed_port_url(), breaker_fail_max=3) as gw:
        answers = []
        for _ in range(6):
            started = time.perf_counter()
            response = await gw.client.get("/api/v1/tasks", headers=auth)
            answers.append((response, time.perf_counter() - started))
        login = await gw.client.post("/api/v1/auth/login", json={})
    for response, elapsed in answers:
        assert response.status_code == 503
        assert int(response.headers["retry-after"]) >= 1
        assert response.json()["upstream"] == "tasks"
        assert elapsed < 0.5
    assert [r.json()["type"].rsplit(":", 1)[1] for r, _ in answers[-3:]] == [
        "upstream-circuit-open"
    ] * 3
    assert login.status_code == 200


async def test_a_slow_upstream_is_cut_off_by_its_read_timeout_with_504(
    gateway: GatewayFactory, tokens: TokenFactory
) -> None:
    async with gateway(tasks_read_timeout_seconds=0.3) as gw:
        started = time.perf_counter()
        response = await gw.client.get("/api/v1/tasks?delay=3", headers=tokens.auth_header())
        elapsed = time.perf_counter() - started
    assert response.status_code == 504
    assert response.headers["content-type"] == "application/problem+json"
    assert 0.3 <= elapsed < 1.0


async def test_the_overall_deadline_bounds_an_upstream_that_trickles(
    gateway: GatewayFactory, tokens: TokenFactory
) -> None:
    async with gateway(upstream_deadline_seconds=0.4) as gw:
        started = time.perf_counter()
        response = await gw.client.get("/api/v1/analytics/s?delay=3", headers=tokens.auth_header())
        elapsed = time.perf_counter() - started
    assert response.status_code == 504
    assert elapsed < 1.0


@pytest.fixture
async def flaky_upstream() -> AsyncIterator[str]:
    """Drops every odd connection without a word; answers 200 on the even ones."""
    connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        if connections % 2:
            writer.close()
            return
        body = b'{"flaky": "answered"}'
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    server.close()
    await server.wait_closed()


@pytest.mark.parametrize(
    ("method", "extra", "expected"),
    [
        ("GET", {}, 200),
        ("PUT", {}, 200),
        ("DELETE", {}, 200),
        ("POST", {}, 503),
        ("PATCH", {}, 503),
        ("POST", {"Idempotency-Key": "k-1"}, 200),
    ],
)
async def test_only_idempotent_requests_are_retried_after_a_dropped_connection(
    gateway: GatewayFactory,
    tokens: TokenFactory,
    flaky_upstream: str,
    method: str,
    extra: dict[str, str],
    expected: int,
) -> None:
    async with gateway(tasks_url=flaky_upstream) as gw:
        response = await gw.client.request(
            method, "/api/v1/tasks", headers={**tokens.auth_header(), **extra}, content=b"{}"
        )
    assert response.status_code == expected
    if expected == 200:
        assert response.json() == {"flaky": "answered"}


async def test_half_open_lets_exactly_one_probe_through(
    gateway: GatewayFactory, tokens: TokenFactory, fakes: dict[str, FakeService]
) -> None:
    auth = tokens.auth_header()
    path = "/api/v1/analytics/probe"
    async with gateway(breaker_fail_max=1, breaker_reset_timeout_seconds=0.3) as gw:
        await gw.client.get(f"{path}?status=500", headers=auth)
        await asyncio.sleep(0.4)
        before = fakes["analytics"].calls[path]
        answers = await asyncio.gather(
            *(gw.client.get(f"{path}?delay=0.2", headers=auth) for _ in range(10))
        )
    assert sorted(a.status_code for a in answers) == [200] + [503] * 9
    assert fakes["analytics"].calls[path] == before + 1


async def test_a_login_overload_passes_through_and_leaves_every_breaker_closed(
    gateway: GatewayFactory, tokens: TokenFactory, fakes: dict[str, FakeService]
) -> None:
    path = "/api/v1/auth/login"
    before = fakes["auth"].calls[path]
    async with gateway(breaker_fail_max=3) as gw:
        burst = await asyncio.gather(
            *(gw.client.post(f"{path}?status=503&retry_after=7", json={}) for _ in range(12))
        )
        refresh = await gw.client.post("/api/v1/auth/refresh", json={})
        login = await gw.client.post(path, json={})
        ready = (await gw.internal.get("/readyz")).json()["upstreams"]
    # Auth's own "busy, come back in 7 s" reaches every client as it was sent.
    assert [r.status_code for r in burst] == [503] * 12
    assert {r.headers["retry-after"] for r in burst} == {"7"}
    assert {r.json()["service"] for r in burst} == {"auth"}
    assert fakes["auth"].calls[path] == before + 13
    assert refresh.status_code == 200
    assert login.status_code == 200
    assert ready["auth-credentials"] == {"state": "closed", "failures": 0}
    assert ready["auth"]["state"] == "closed"
    assert _breaker_metric("auth-credentials") == 0


async def test_login_failures_open_the_login_breaker_but_refresh_and_me_are_still_served(
    gateway: GatewayFactory, tokens: TokenFactory, fakes: dict[str, FakeService]
) -> None:
    path = "/api/v1/auth/login"
    async with gateway(breaker_fail_max=3, breaker_reset_timeout_seconds=30) as gw:
        burst = [await gw.client.post(f"{path}?status=500", json={}) for _ in range(3)]
        calls = fakes["auth"].calls[path]
        login = await gw.client.post(path, json={})
        register = await gw.client.post("/api/v1/auth/register", json={})
        refresh = await gw.client.post("/api/v1/auth/refresh", json={})
        me = await gw.client.get("/api/v1/auth/me", headers=tokens.auth_header())
        ready = (await gw.internal.get("/readyz")).json()["upstreams"]
    assert [r.status_code for r in burst] == [500] * 3
    assert login.status_code == 503
    assert login.json()["type"].endswith(":upstream-circuit-open")
    assert login.json()["upstream"] == "auth"
    assert 25 <= int(login.headers["retry-after"]) <= 30
    assert fakes["auth"].calls[path] == calls
    assert register.status_code == 503
    assert refresh.status_code == 200
    assert me.status_code == 200
    assert ready["auth-credentials"]["state"] == "open"
    assert ready["auth"] == {"state": "closed", "failures": 0}
    assert _breaker_metric("auth-credentials") == 2
    assert _breaker_metric("auth") == 0
