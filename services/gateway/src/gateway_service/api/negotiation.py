"""CORS and gzip for the requests that negotiate them, and nothing per request for the rest."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CorsAndGzip"]


def _negotiates(scope: Scope) -> bool:
    """A browser's cross-origin request, or a client that accepts gzip."""
    for name, value in scope["headers"]:
        if name == b"origin" or (name == b"accept-encoding" and b"gzip" in value.lower()):
            return True
    return False


def _vary(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """`headers` with Vary naming Origin and Accept-Encoding (once each)."""
    named = {
        token.strip().lower()
        for name, value in headers
        if name.lower() == b"vary"
        for token in value.split(b",")
    }
    if b"*" in named:
        return headers
    missing = [token for token in (b"Origin", b"Accept-Encoding") if token.lower() not in named]
    return [*headers, (b"vary", b", ".join(missing))] if missing else headers


class CorsAndGzip:
    """Starlette's CORS and gzip middleware for requests with an Origin header or gzip in
    Accept-Encoding. The others (API clients: no Origin, and wrk's requests) go straight
    through, with the `Vary: Origin, Accept-Encoding` those two would have added: the same
    request from a browser, or accepting gzip, may be answered differently.

    Starlette wraps every response in both, to add those Vary headers: ~50 us (gzip, by
    cProfile) and ~30 us (CORS) of the gateway's CPU per request, paid for nothing else.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        allow_origins: Sequence[str],
        allow_methods: Sequence[str],
        allow_headers: Sequence[str],
        expose_headers: Sequence[str],
        max_age: int,
        gzip_minimum_size: int,
        gzip_level: int,
    ) -> None:
        self.app = app
        gzip = GZipMiddleware(app, minimum_size=gzip_minimum_size, compresslevel=gzip_level)
        self._negotiated = CORSMiddleware(
            gzip,
            allow_origins=allow_origins,
            allow_methods=allow_methods,
            allow_headers=allow_headers,
            expose_headers=expose_headers,
            max_age=max_age,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _negotiates(scope):
            await self._negotiated(scope, receive, send)
            return

        async def send_with_vary(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _vary(list(message.get("headers", [])))
            await send(message)

        await self.app(scope, receive, send_with_vary)
