"""The proxy route: a raw ASGI endpoint that forwards one request to its upstream."""

from __future__ import annotations

from starlette.types import Receive, Scope, Send
from taskmesh_common.context import request_id_var

from gateway_service.adapters.upstream import UpstreamClient
from gateway_service.config import Settings
from gateway_service.domain.errors import GatewayError, PayloadTooLarge
from gateway_service.domain.headers import (
    filter_request_headers,
    filter_response_headers,
    hide_upstream_origins,
)
from gateway_service.domain.routing import Upstream

from .errors import gateway_problem

__all__ = ["Proxy", "client_address"]


def client_address(scope: Scope) -> str:
    # The TCP peer, or behind a trusted proxy (TASKMESH_TRUSTED_PROXIES) the client it
    # vouches for: taskmesh_common.client_address has rewritten scope["client"].
    client = scope.get("client")
    return client[0] if client else "unknown"


class _ClientGone(Exception):
    """The client disconnected before sending its whole body: nothing to forward."""


async def _read_body(receive: Receive, limit: int) -> bytes:
    # Counted as it streams: a chunked body (no Content-Length) must not slip past the limit.
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            # A truncated body must never reach an upstream as if it were the whole one.
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _forwarded_headers(scope: Scope) -> list[tuple[str, str]]:
    headers = [
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in filter_request_headers(scope["headers"])
    ]
    # Exactly one entry, the client decided here: the services trust the gateway alone, and
    # an entry the client wrote must never reach them as if the gateway had vouched for it.
    headers.append(("X-Forwarded-For", client_address(scope)))
    headers.append(("X-Forwarded-Proto", scope.get("scheme", "http")))
    request_id = request_id_var.get()
    if request_id:
        headers.append(("X-Request-ID", request_id))
    for name, value in scope["headers"]:
        if name == b"host":
            headers.append(("X-Forwarded-Host", value.decode("latin-1")))
            break
    return headers


class Proxy:
    """An ASGI app (Starlette mounts class instances as raw ASGI, no Request objects)."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings: Settings = scope["app"].state.settings
        client: UpstreamClient = scope["app"].state.upstreams
        target = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        try:
            body = await _read_body(receive, settings.max_body_bytes)
            response = await client.send(
                self.upstream,
                scope["method"],
                target.decode("latin-1"),
                _forwarded_headers(scope),
                body,
            )
        except GatewayError as exc:
            await gateway_problem(exc)(scope, receive, send)
            return
        except _ClientGone:
            return
        headers = hide_upstream_origins(
            filter_response_headers(response.headers), client.urls.values()
        )
        if scope["method"] == "HEAD":
            # No body, but the length of the one a GET would have had.
            headers += [(k, v) for k, v in response.headers if k.lower() == b"content-length"]
        elif response.status not in (204, 304):
            headers.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})
