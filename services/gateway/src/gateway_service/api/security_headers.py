"""Security headers on every answer of the gateway, its own and the proxied ones.

In production also Strict-Transport-Security: browsers then never talk to the API over
plain HTTP again (RFC 6797); TLS ends in front of the gateway, so it is set here.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .console import CONSOLE_CSP, is_console_path

__all__ = ["SecurityHeadersMiddleware"]

# A JSON API renders nothing; the docs page (/docs) loads Swagger UI from a CDN, so it
# gets its own, looser policy.
_API_CSP = b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
_DOCS_CSP = (
    b"default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    b"style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    b"img-src 'self' data: https://fastapi.tiangolo.com; connect-src 'self'; "
    b"frame-ancestors 'none'; base-uri 'none'"
)
_FIXED = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
_HSTS = b"strict-transport-security"
_OURS = frozenset({name for name, _ in _FIXED} | {b"content-security-policy", _HSTS})


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, hsts: bytes | None = None) -> None:
        self.app = app
        self._fixed = (*_FIXED, (_HSTS, hsts)) if hsts else _FIXED

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith("/docs"):
            csp = _DOCS_CSP
        elif is_console_path(path):
            csp = CONSOLE_CSP
        else:
            csp = _API_CSP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _OURS]
                headers.extend(self._fixed)
                headers.append((b"content-security-policy", csp))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
