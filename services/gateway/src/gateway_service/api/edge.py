"""The checks every proxied request passes before it leaves the gateway.

In order: body size (by Content-Length), the bearer token, the rate limit together with
the token's revocation (one Redis round trip), then the token requirement. The limit comes
before the 401 so that token guessing is limited too. When Redis does not answer, the
revocation check follows the rate limiter: fail open lets the token through unchecked
(the services still check writes and admin decisions), fail closed answers 503.
Plain ASGI (no BaseHTTPMiddleware): this runs on every request.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from taskmesh_common.errors import NotAuthenticated, ProblemError, problem_response
from taskmesh_common.security import Principal, Revoked, TokenVerifier
from taskmesh_common.security.revocation import is_revoked, issued_ms, revocation_keys

from gateway_service.adapters.ratelimiter import RateLimiter, RedisUnavailable
from gateway_service.config import Settings
from gateway_service.domain.errors import (
    HeadersTooLarge,
    PayloadTooLarge,
    RateLimited,
    RateLimiterUnavailable,
)
from gateway_service.domain.ratelimit import (
    Decision,
    Rate,
    policy_header,
    ratelimit_header,
)
from gateway_service.domain.routing import (
    AUTH_POLICY_PATHS,
    is_public,
    route_template,
    upstream_for,
)
from gateway_service.metrics import RATELIMIT_DECISIONS

from .errors import gateway_problem
from .proxy import Proxy, client_address

__all__ = ["EdgeMiddleware"]

logger = logging.getLogger("gateway.edge")
_CHALLENGE_MISSING = 'Bearer realm="taskmesh"'
_CHALLENGE_INVALID = 'Bearer realm="taskmesh", error="invalid_token"'


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _bearer_token(scope: Scope) -> str | None:
    raw = _header(scope, b"authorization")
    if raw is None:
        return None
    scheme, _, token = raw.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer":
        return ""
    return token.strip()


class _RouteLabel:
    """What the request metrics read from scope["route"]: the template, not the raw path."""

    def __init__(self, path: str) -> None:
        self.path = path


class EdgeMiddleware:
    """Checks proxied requests and hands them straight to their Proxy.

    Skipping the router and the exception and exit-stack layers below matters on the hot
    path; the Proxy answers its own errors, and anything unexpected still reaches the
    app's problem+json handler in the outermost error middleware.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._proxies = {name: Proxy(name) for name in ("auth", "tasks", "analytics")}
        # Two templates per route (the prefix, and below it): a bounded set of labels.
        self._labels: dict[str, _RouteLabel] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or upstream_for(scope["path"]) is None:
            # Health, metrics, docs and unknown paths (404) are the gateway's own.
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        settings: Settings = state.settings
        try:
            await self._handle(scope, receive, send, settings, state)
        except ProblemError as exc:
            response = problem_response(
                exc.status, exc.detail, title=exc.title, slug=exc.slug, headers=exc.headers
            )
            await response(scope, receive, send)

    async def _handle(
        self, scope: Scope, receive: Receive, send: Send, settings: Settings, state: Any
    ) -> None:
        headers = scope["headers"]
        if (
            len(headers) > settings.max_header_count
            or sum(len(name) + len(value) for name, value in headers) > settings.max_header_bytes
        ):
            too_large = HeadersTooLarge(settings.max_header_bytes, settings.max_header_count)
            await gateway_problem(too_large)(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > settings.max_body_bytes:
            await gateway_problem(PayloadTooLarge(settings.max_body_bytes))(scope, receive, send)
            return

        path: str = scope["path"]
        token = _bearer_token(scope)
        principal: Principal | None = None
        auth_error: NotAuthenticated | None = None
        if token is not None:
            verifier: TokenVerifier = state.verifier
            try:
                principal = await verifier.verify(token) if token else None
            except NotAuthenticated as exc:
                auth_error = exc
            if principal is None and auth_error is None:
                auth_error = NotAuthenticated("Authorization must be 'Bearer <token>'")

        policy, identity, rate = self._policy(scope, path, principal, settings)
        limiter: RateLimiter = state.limiter
        decision: Decision | None = None
        keys = revocation_keys(settings.redis_prefix, principal) if principal else ()
        try:
            decision, not_before = await limiter.acquire_and_read(policy, identity, rate, keys)
            if principal is not None and is_revoked(issued_ms(principal.claims), [not_before]):
                principal, auth_error = None, Revoked()
        except RedisUnavailable:
            outcome = "failed_open" if limiter.fail_open else "failed_closed"
            RATELIMIT_DECISIONS.labels(policy, outcome).inc()
            if not limiter.fail_open:
                await gateway_problem(RateLimiterUnavailable())(scope, receive, send)
                return

        extra: list[tuple[bytes, bytes]] = []
        if decision is not None:
            extra = [
                (b"ratelimit-policy", policy_header(policy, rate).encode()),
                (b"ratelimit", ratelimit_header(decision).encode()),
            ]
            if not decision.allowed:
                headers = {k.decode(): v.decode() for k, v in extra}
                problem = gateway_problem(RateLimited(policy, decision.retry_after), headers)
                await problem(scope, receive, send)
                return

        if principal is None and not is_public(path):
            challenge = _CHALLENGE_INVALID if auth_error else _CHALLENGE_MISSING
            detail = auth_error.detail if auth_error else "A bearer token is required"
            headers = {k.decode(): v.decode() for k, v in extra}
            headers["WWW-Authenticate"] = challenge
            response = problem_response(401, detail, slug="not-authenticated", headers=headers)
            await response(scope, receive, send)
            return

        scope.setdefault("state", {})["principal"] = principal
        upstream = upstream_for(path)
        assert upstream is not None
        scope["route"] = self._label(path)
        proxy = self._proxies[upstream]
        if not extra:
            await proxy(scope, receive, send)
            return

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await proxy(scope, receive, send_with_limits)

    def _label(self, path: str) -> _RouteLabel:
        template = route_template(path)
        if template is None:
            return _RouteLabel("unmatched")
        label = self._labels.get(template)
        if label is None:
            label = self._labels[template] = _RouteLabel(template)
        return label

    @staticmethod
    def _policy(
        scope: Scope, path: str, principal: Principal | None, settings: Settings
    ) -> tuple[str, str, Rate]:
        if scope["method"] == "POST" and path.rstrip("/") in AUTH_POLICY_PATHS:
            return "auth", client_address(scope), settings.rate_limit_auth
        if principal is not None:
            return "user", principal.user_id, settings.rate_limit_user
        return "anon", client_address(scope), settings.rate_limit_anon
