"""Routing and faithful pass-through, as a client and an upstream see them."""

from __future__ import annotations

import gzip

import pytest
from taskmesh_common.testing.tokens import TokenFactory

from .conftest import FakeService, GatewayFactory

pytestmark = pytest.mark.integration


def _echoed(headers: list[list[str]]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers}


@pytest.mark.parametrize(
    ("path", "service"),
    [
        ("/api/v1/auth/me", "auth"),
        ("/api/v1/tasks", "tasks"),
        ("/api/v1/tasks/abc123", "tasks"),
        ("/api/v1/analytics/summary", "analytics"),
    ],
)
async def test_each_prefix_reaches_its_service(
    gateway: GatewayFactory, tokens: TokenFactory, path: str, service: str
) -> None:
    async with gateway() as gw:
        response = await gw.client.get(path, headers=tokens.auth_header())
    assert response.status_code == 200
    assert response.json()["service"] == service
    assert response.json()["path"] == path


async def test_jwks_is_public_and_served_by_auth(
    gateway: GatewayFactory, tokens: TokenFactory
) -> None:
    async with gateway() as gw:
        response = await gw.client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.json()["keys"][0]["kid"] == tokens.kid


@pytest.mark.parametrize("path", ["/nope", "/api/v1/unknown/x", "/api/v1/tasksx", "/api/v2/tasks"])
async def test_unknown_routes_are_problem_404s(gateway: GatewayFactory, path: str) -> None:
    async with gateway() as gw:
        response = await gw.client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404


async def test_method_query_body_and_status_pass_through(
    gateway: GatewayFactory, tokens: TokenFactory
) -> None:
    async with gateway() as gw:
        response = await gw.client.patch(
            "/api/v1/tasks/t1?status=409&tag=a&tag=b%20c",
            headers={**tokens.auth_header(), "Content-Type": "application/json", "If-Match": '"3"'},
            content=b'{"title": "caf\xc3\xa9"}',
        )
    assert response.status_code == 409
    assert response.headers["x-upstream"] == "tasks"
    echoed = response.json()
    assert echoed["method"] == "PATCH"
    assert echoed["query"] == "status=409&tag=a&tag=b%20c"
    assert echoed["body"] == '{"title": "café"}'
    headers = _echoed(echoed["headers"])
    assert headers["content-type"] == "application/json"
    assert headers["if-match"] == '"3"'


async def test_token_request_id_and_trace_context_go_upstream(
    gateway: GatewayFactory, tokens: TokenFactory
) -> None:
    auth = tokens.auth_header()
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    async with gateway() as gw:
        response = await gw.client.get(
            "/api/v1/tasks",
            headers={**auth, "X-Request-ID": "req-42", "traceparent": traceparent},
        )
    assert response.headers["x-request-id"] == "req-42"
    headers = _echoed(response.json()["headers"])
    assert headers["authorization"] == auth["Authorization"]
    assert headers["x-request-id"] == "req-42"
    assert headers["traceparent"] == traceparent
    assert headers["x-forwarded-for"] == "10.0.0.1"
    assert headers["x-forwarded-proto"] == "http"


async def test_upstreams_get_one_forwarded_for_entry_the_client_the_gateway_decided(
    gateway: GatewayFactory, tokens: TokenFactory
) -> None:
    spoofed = {**tokens.auth_header(), "X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https"}
    async with gateway() as gw:
        # No trusted proxies: the client's header is ignored, the TCP peer is the client.
        seen = _echoed((await gw.client.get("/api/v1/tasks", headers=spoofed)).json()["headers"])
    assert seen["x-forwarded-for"] == "10.0.0.1"
    assert seen["x-forwarded-proto"] == "http"

    chain = {**spoofed, "X-Forwarded-For": "6.6.6.6, 203.0.113.9, 10.9.9.9"}
    async with gateway(trusted_proxies="10.0.0.0/8") as gw:
        # Behind a trusted proxy: the right-most entry no trusted proxy wrote; the entries to
        # its left, the client's own, never travel on.
        seen = _echoed((await gw.client.get("/api/v1/tasks", headers=chain)).json()["headers"])
        assert seen["x-forwarded-for"] == "203.0.113.9"
        assert seen["x-forwarded-proto"] == "https"
        async with gw.client_from("192.0.2.50") as untrusted:
            direct = await untrusted.get("/api/v1/tasks", headers=chain)
        assert _echoed(direct.json()["headers"])["x-forwarded-for"] == "192.0.2.50"


async def test_hop_by_hop_and_identity_headers_are_not_forwarded(
    gateway: GatewayFactory, tokens: TokenFactory
) -> None:
    async with gateway() as gw:
        response = await gw.client.get(
            "/api/v1/tasks",
            headers={
                **tokens.auth_header(user_id="real-user"),
                "Connection": "keep-alive, X-Private-Hop",
                "X-Private-Hop": "secret",
                "Keep-Alive": "timeout=5",
                "TE": "trailers",
                "Proxy-Authorization": "Basic Zm9vOmJhcg==",
                "X-User-Id": "admin",
                "X-User-Role": "admin",
                "X-Forwarded-User": "admin",
                "X-Custom": "kept",
            },
        )
    headers = _echoed(response.json()["headers"])
    for dropped in (
        "x-private-hop",
        "keep-alive",
        "te",
        "proxy-authorization",
        "x-user-id",
        "x-user-role",
        "x-forwarded-user",
    ):
        assert dropped not in headers, dropped
    assert headers["x-custom"] == "kept"
    # The upstream's own hop-by-hop header does not reach the client either.
    assert "keep-alive" not in response.headers


async def test_upstream_gzip_body_passes_through_without_double_compression(
    gateway: GatewayFactory, tokens: TokenFactory
) -> None:
    async with gateway() as gw:
        response = await gw.client.get(
            "/api/v1/tasks?gzip=1&size=5000",
            headers={**tokens.auth_header(), "Accept-Encoding": "gzip"},
        )
    assert response.headers["content-encoding"] == "gzip"
    # httpx decoded it once: one layer of gzip, not two.
    assert response.json()["padding"] == "x" * 5000
    assert len(gzip.compress(response.content)) < 5000


async def test_large_answers_are_gzipped_for_clients_that_accept_it(
    gateway: GatewayFactory, tokens: TokenFactory
) -> None:
    async with gateway() as gw:
        big = await gw.client.get(
            "/api/v1/tasks?size=4000", headers={**tokens.auth_header(), "Accept-Encoding": "gzip"}
        )
        small = await gw.client.get(
            "/api/v1/tasks", headers={**tokens.auth_header(), "Accept-Encoding": "gzip"}
        )
    assert big.headers["content-encoding"] == "gzip"
    assert int(big.headers["content-length"]) < 4000
    assert "content-encoding" not in small.headers


async def test_answers_say_they_vary_by_origin_and_encoding_whoever_asked(
    gateway: GatewayFactory, tokens: TokenFactory
) -> None:
    # No Origin and no gzip: the answer passes as it came, yet says that a browser or a
    # gzip-accepting client could get another one (shared caches key on that).
    plain = {**tokens.auth_header(), "Accept-Encoding": "identity"}
    browser = {**plain, "Origin": "http://localhost:3000"}
    async with gateway(cors_origins="http://localhost:3000") as gw:
        big = await gw.client.get("/api/v1/tasks?size=4000", headers=plain)
        small = await gw.client.get("/api/v1/tasks", headers=plain)
        from_browser = await gw.client.get("/api/v1/tasks?size=4000", headers=browser)
        gzipped = await gw.client.get(
            "/api/v1/tasks?size=4000", headers={**plain, "Accept-Encoding": "gzip"}
        )
    for response in (big, small):
        assert response.status_code == 200
        assert "content-encoding" not in response.headers
        assert "access-control-allow-origin" not in response.headers
        vary = {v.strip().lower() for v in response.headers.get_list("vary", split_commas=True)}
        assert vary == {"origin", "accept-encoding"}
    assert int(big.headers["content-length"]) > 4000
    assert from_browser.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "content-encoding" not in from_browser.headers
    assert gzipped.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in gzipped.headers["vary"].lower()


async def test_security_headers_on_proxied_and_own_answers(
    gateway: GatewayFactory, tokens: TokenFactory
) -> None:
    async with gateway() as gw:
        proxied = await gw.client.get("/api/v1/tasks", headers=tokens.auth_header())
        own = await gw.client.get("/healthz")
        missing = await gw.client.get("/nope")
    for response in (proxied, own, missing):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-request-id"]


async def test_request_ids_are_made_when_the_client_sends_none(
    gateway: GatewayFactory, tokens: TokenFactory, fakes: dict[str, FakeService]
) -> None:
    async with gateway() as gw:
        response = await gw.client.get("/api/v1/tasks", headers=tokens.auth_header())
    made = response.headers["x-request-id"]
    assert len(made) >= 16
    assert _echoed(response.json()["headers"])["x-request-id"] == made


async def test_upstream_latency_is_measured_per_upstream_and_status(
    gateway: GatewayFactory, tokens: TokenFactory
) -> None:
    async with gateway() as gw:
        await gw.client.get("/api/v1/analytics/summary?status=418", headers=tokens.auth_header())
        exposed = (await gw.internal.get("/metrics")).text
    assert 'gateway_upstream_duration_seconds_count{status="418",upstream="analytics"}' in exposed
    assert 'gateway_breaker_state{upstream="analytics"}' in exposed
