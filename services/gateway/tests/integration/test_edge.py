"""Tokens, body size and CORS at the edge, before anything reaches a service."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from taskmesh_common.testing.tokens import TokenFactory

from .conftest import FakeService, GatewayFactory, closed_port_url

pytestmark = pytest.mark.integration


def _bad_tokens(tokens: TokenFactory) -> dict[str, str]:
    other = TokenFactory()
    return {
        "garbage": "not-a-jwt",
        "forged with the right kid": other.token(headers={"kid": tokens.kid}),
        "unknown kid": other.token(),
        "expired": tokens.token(exp=tokens.now() - 3600, iat=tokens.now() - 4000),
        "wrong audience": tokens.token(aud="someone-else"),
        "no subject": tokens.token(sub=None),
        "alg none": "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4In0.",
    }


async def test_bad_tokens_are_401_with_a_bearer_challenge_and_never_reach_the_service(
    gateway: GatewayFactory, tokens: TokenFactory, fakes: dict[str, FakeService]
) -> None:
    before = fakes["tasks"].calls["/api/v1/tasks"]
    async with gateway() as gw:
        for label, token in _bad_tokens(tokens).items():
            response = await gw.client.get(
                "/api/v1/tasks", headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 401, label
            assert response.headers["www-authenticate"].startswith("Bearer"), label
            assert 'error="invalid_token"' in response.headers["www-authenticate"], label
            assert response.headers["content-type"] == "application/problem+json", label
    assert fakes["tasks"].calls["/api/v1/tasks"] == before


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Basic dXNlcjpwYXNz"}])
async def test_protected_routes_without_a_bearer_token_are_401(
    gateway: GatewayFactory, headers: dict[str, str]
) -> None:
    async with gateway() as gw:
        for path in ("/api/v1/tasks", "/api/v1/analytics/summary", "/api/v1/auth/me"):
            response = await gw.client.get(path, headers=headers)
            assert response.status_code == 401, path
            assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/auth/register"),
        ("POST", "/api/v1/auth/login"),
        ("POST", "/api/v1/auth/refresh"),
        ("GET", "/.well-known/jwks.json"),
        ("GET", "/api/v1/auth/.well-known/jwks.json"),
        ("GET", "/healthz"),
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
    ],
)
async def test_public_routes_need_no_token(gateway: GatewayFactory, method: str, path: str) -> None:
    async with gateway() as gw:
        response = await gw.client.request(method, path, json={} if method == "POST" else None)
    assert response.status_code == 200


async def test_metrics_and_breaker_states_are_internal_only(
    gateway: GatewayFactory, tokens: TokenFactory
) -> None:
    async with gateway() as gw:
        await gw.client.get("/api/v1/tasks", headers=tokens.auth_header())
        public_metrics = await gw.client.get("/metrics", headers=tokens.auth_header())
        public_ready = await gw.client.get("/readyz")
        internal_metrics = await gw.internal.get("/metrics")
        internal_ready = await gw.internal.get("/readyz")
    assert public_metrics.status_code == 404
    assert public_metrics.headers["content-type"] == "application/problem+json"
    assert "http_requests_total" not in public_metrics.text
    assert public_ready.status_code == 200 and "upstreams" not in public_ready.json()
    assert "gateway_ratelimit_decisions_total" in internal_metrics.text
    assert internal_ready.json()["upstreams"]["tasks"]["state"] == "closed"


async def test_a_valid_token_on_a_public_route_still_works(
    gateway: GatewayFactory, tokens: TokenFactory
) -> None:
    async with gateway() as gw:
        response = await gw.client.post(
            "/api/v1/auth/refresh", json={}, headers=tokens.auth_header()
        )
    assert response.status_code == 200


async def test_a_body_over_one_mebibyte_is_413_by_content_length(
    gateway: GatewayFactory, tokens: TokenFactory, fakes: dict[str, FakeService]
) -> None:
    before = fakes["tasks"].total_calls()
    async with gateway() as gw:
        response = await gw.client.post(
            "/api/v1/tasks", headers=tokens.auth_header(), content=b"x" * (1024 * 1024 + 1)
        )
        exactly = await gw.client.post(
            "/api/v1/tasks", headers=tokens.auth_header(), content=b"x" * (1024 * 1024)
        )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert exactly.status_code == 200
    assert fakes["tasks"].total_calls() == before + 1


async def test_oversized_or_too_many_headers_are_431_and_never_forwarded(
    gateway: GatewayFactory, tokens: TokenFactory, fakes: dict[str, FakeService]
) -> None:
    before = fakes["tasks"].total_calls()
    async with gateway() as gw:
        big = await gw.client.get(
            "/api/v1/tasks", headers={**tokens.auth_header(), "X-Big": "a" * 40_000}
        )
        many = await gw.client.get(
            "/api/v1/tasks",
            headers=[*tokens.auth_header().items(), *((f"X-{i}", "v") for i in range(150))],
        )
        normal = await gw.client.get("/api/v1/tasks", headers=tokens.auth_header())
    for response in (big, many):
        assert response.status_code == 431
        assert response.headers["content-type"] == "application/problem+json"
    assert normal.status_code == 200
    assert fakes["tasks"].total_calls() == before + 1


async def test_a_streamed_body_without_length_is_cut_off_at_one_mebibyte(
    gateway: GatewayFactory, tokens: TokenFactory, fakes: dict[str, FakeService]
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"y" * 65536

    before = fakes["tasks"].total_calls()
    async with gateway() as gw:
        response = await gw.client.post(
            "/api/v1/tasks", headers=tokens.auth_header(), content=chunks()
        )
    assert response.status_code == 413
    assert fakes["tasks"].total_calls() == before


async def test_cors_preflight_from_a_dev_origin_is_answered(gateway: GatewayFactory) -> None:
    async with gateway() as gw:
        response = await gw.client.options(
            "/api/v1/tasks",
            headers={
                "Origin": "http://localhost:3000",
                "Access-Control-Request-Method": "PATCH",
                "Access-Control-Request-Headers": "authorization, content-type, if-match",
            },
        )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "PATCH" in response.headers["access-control-allow-methods"]
    assert "if-match" in response.headers["access-control-allow-headers"].lower()


async def test_cors_refuses_origins_not_configured(gateway: GatewayFactory) -> None:
    async with gateway(cors_origins="https://app.example.com") as gw:
        allowed = await gw.client.options(
            "/api/v1/tasks",
            headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"},
        )
        refused = await gw.client.options(
            "/api/v1/tasks",
            headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "GET"},
        )
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers


async def test_cors_headers_on_actual_requests_expose_rate_limit_headers(
    gateway: GatewayFactory, tokens: TokenFactory
) -> None:
    async with gateway() as gw:
        response = await gw.client.get(
            "/api/v1/tasks", headers={**tokens.auth_header(), "Origin": "http://127.0.0.1:5173"}
        )
    assert response.headers["access-control-allow-origin"] == "http://127.0.0.1:5173"
    assert "ratelimit" in response.headers["access-control-expose-headers"].lower()


async def test_a_client_that_disconnects_mid_body_sends_nothing_upstream(
    gateway: GatewayFactory, tokens: TokenFactory, fakes: dict[str, FakeService]
) -> None:
    messages = [
        {"type": "http.request", "body": b'{"title": "half', "more_body": True},
        {"type": "http.disconnect"},
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/tasks/gone",
        "raw_path": b"/api/v1/tasks/gone",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"gateway"),
            (b"authorization", f"Bearer {tokens.token()}".encode()),
        ],
        "client": ("10.0.0.1", 5000),
        "server": ("gateway", 80),
    }
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    async with gateway() as gw:
        await gw.app(scope, receive, send)
    assert fakes["tasks"].calls["/api/v1/tasks/gone"] == 0
    assert sent == []


async def test_a_location_at_an_upstreams_address_reaches_the_client_without_it(
    gateway: GatewayFactory, tokens: TokenFactory, fakes: dict[str, FakeService]
) -> None:
    async with gateway() as gw:
        response = await gw.client.get(
            "/api/v1/tasks/x?status=307&redirect=/api/v1/tasks%3Fpage=2",
            headers=tokens.auth_header(),
            follow_redirects=False,
        )
    assert response.status_code == 307
    assert response.headers["location"] == "/api/v1/tasks?page=2"
    # (The fake's body echoes the Host it was sent, so only the headers are the gateway's.)
    shown = str(response.headers.multi_items())
    for fake in fakes.values():
        assert fake.url.split("//")[1] not in shown, shown


async def test_readyz_while_redis_is_away_shows_no_address_or_error_text(
    gateway: GatewayFactory,
) -> None:
    url = closed_port_url().replace("http", "redis")
    port = url.rsplit(":", 1)[1]
    async with gateway(redis_url=url, readiness_timeout_seconds=0.5) as gw:
        ready = await gw.client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["failed"] == ["redis"]
    assert ready.json()["checks"]["redis"] == {"ok": False}
    for leak in (port, "127.0.0.1", "Error", "refused"):
        assert leak not in ready.text, ready.text
