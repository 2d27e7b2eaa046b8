"""Which upstream a path goes to, which paths are public, and which headers cross."""

from __future__ import annotations

import pytest
from gateway_service.domain.headers import (
    filter_request_headers,
    filter_response_headers,
    hide_upstream_origins,
)
from gateway_service.domain.routing import is_public, route_template, upstream_for


@pytest.mark.parametrize(
    ("path", "upstream"),
    [
        ("/api/v1/auth/login", "auth"),
        ("/api/v1/auth/users/123", "auth"),
        ("/.well-known/jwks.json", "auth"),
        ("/api/v1/tasks", "tasks"),
        ("/api/v1/tasks/abc", "tasks"),
        ("/api/v1/analytics/summary", "analytics"),
        ("/api/v1/tasksx", None),
        ("/api/v1/task", None),
        ("/api/v1", None),
        ("/healthz", None),
        ("/.well-known/other", None),
    ],
)
def test_paths_route_by_whole_segments(path: str, upstream: str | None) -> None:
    assert upstream_for(path) == upstream


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/api/v1/tasks", "/api/v1/tasks"),
        ("/api/v1/tasks/", "/api/v1/tasks/{path}"),
        ("/api/v1/tasks/abc", "/api/v1/tasks/{path}"),
        ("/api/v1/tasks/abc/def", "/api/v1/tasks/{path}"),
        ("/api/v1/auth/login", "/api/v1/auth/{path}"),
        ("/.well-known/jwks.json", "/.well-known/jwks.json"),
        ("/api/v1/tasksx", None),
        ("/healthz", None),
    ],
)
def test_metrics_and_spans_tell_a_collection_from_what_is_below_it(
    path: str, template: str | None
) -> None:
    # A bounded set of labels (two per route), with listing apart from reading one task.
    assert route_template(path) == template


@pytest.mark.parametrize(
    ("path", "public"),
    [
        ("/api/v1/auth/login", True),
        ("/api/v1/auth/login/", True),
        ("/api/v1/auth/register", True),
        ("/api/v1/auth/refresh", True),
        ("/.well-known/jwks.json", True),
        ("/api/v1/auth/logout", False),
        ("/api/v1/auth/me", False),
        ("/api/v1/auth/loginx", False),
        ("/api/v1/tasks", False),
    ],
)
def test_only_register_login_refresh_and_jwks_are_public(path: str, public: bool) -> None:
    assert is_public(path) is public


def test_request_headers_lose_hop_by_hop_identity_and_gateway_owned_ones() -> None:
    headers = [
        (b"connection", b"keep-alive, X-Secret"),
        (b"x-secret", b"1"),
        (b"keep-alive", b"5"),
        (b"transfer-encoding", b"chunked"),
        (b"upgrade", b"websocket"),
        (b"proxy-anything", b"1"),
        (b"x-user-id", b"admin"),
        (b"X-Forwarded-User", b"admin"),
        (b"host", b"gateway"),
        (b"x-forwarded-for", b"1.2.3.4"),
        (b"authorization", b"Bearer t"),
        (b"traceparent", b"00-abc-def-01"),
        (b"if-match", b'"2"'),
    ]
    assert filter_request_headers(headers) == [
        (b"authorization", b"Bearer t"),
        (b"traceparent", b"00-abc-def-01"),
        (b"if-match", b'"2"'),
    ]


def test_response_headers_keep_repeats_and_lose_hop_by_hop() -> None:
    headers = [
        (b"Set-Cookie", b"a=1"),
        (b"Set-Cookie", b"b=2"),
        (b"Connection", b"close"),
        (b"Transfer-Encoding", b"chunked"),
        (b"Content-Length", b"10"),
        (b"ETag", b'"3"'),
    ]
    assert filter_response_headers(headers) == [
        (b"set-cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
        (b"etag", b'"3"'),
    ]


@pytest.mark.parametrize(
    ("location", "shown"),
    [
        (b"http://127.0.0.1:8001/api/v1/auth/login", b"/api/v1/auth/login"),
        (b"HTTP://tasks.internal/api/v1/tasks?x=1#f", b"/api/v1/tasks?x=1#f"),
        (b"http://tasks.internal:80", b"/"),
        (b"https://example.com/elsewhere", b"https://example.com/elsewhere"),
        (b"http://127.0.0.1:9999/other-port", b"http://127.0.0.1:9999/other-port"),
        (b"/already/relative", b"/already/relative"),
    ],
)
def test_locations_at_an_upstreams_address_become_relative(location: bytes, shown: bytes) -> None:
    upstreams = ["http://127.0.0.1:8001", "http://tasks.internal"]
    headers = [(b"location", location), (b"content-location", location), (b"etag", b'"1"')]
    assert hide_upstream_origins(headers, upstreams) == [
        (b"location", shown),
        (b"content-location", shown),
        (b"etag", b'"1"'),
    ]
