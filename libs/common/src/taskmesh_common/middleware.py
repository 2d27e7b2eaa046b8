"""Plain ASGI middleware (no BaseHTTPMiddleware: it costs a task per request)."""

from __future__ import annotations

import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from taskmesh_common.context import request_id_var
from taskmesh_common.metrics import HTTP_REQUEST_DURATION, HTTP_REQUESTS
from taskmesh_common.telemetry import quiet_unless_sampled

__all__ = ["REQUEST_ID_HEADER", "RequestContextMiddleware"]

REQUEST_ID_HEADER = "x-request-id"
# A client-sent id is echoed only when it is short and plain, so it cannot forge log lines.
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class RequestContextMiddleware:
    """Gives each request an id (echoed when the client sent a safe one) and records metrics;
    inside a trace that is not sampled, it runs the request with the client libraries'
    instrumentation quiet (``quiet_unless_sampled``)."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if _SAFE_REQUEST_ID.match(candidate):
                    request_id = candidate
                break
        if request_id is None:
            request_id = uuid.uuid4().hex
        token = request_id_var.set(request_id)
        raw_id = request_id.encode("latin-1")
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-request-id"]
                headers.append((b"x-request-id", raw_id))
                message["headers"] = headers
            await send(message)

        try:
            with quiet_unless_sampled():
                await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            labels = (self.service, template, scope["method"], str(status))
            HTTP_REQUESTS.labels(*labels).inc()
            HTTP_REQUEST_DURATION.labels(*labels).observe(time.perf_counter() - started)
