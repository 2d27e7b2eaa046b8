"""The internal listener: /metrics and detailed readiness, on a port of their own.

A service's public port is what the gateway and the ingress route to; what operators and
Prometheus read (request counts, dependency error text, breaker states) must never be
reachable from there. Every service therefore answers on a second, small listener
(`TASKMESH_INTERNAL_PORT`) that no route, ingress or published port leads to:

- `/metrics`: Prometheus' text format;
- `/readyz`: every check with its error text and the extra details (breaker states);
- `/healthz`: the process answers.

`serve()` starts it once the service's lifespan has started and stops it after the public
listener has drained. In-process tests reach it through `app.state.internal` (an ASGI app).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from taskmesh_common.health import ReadinessRegistry

__all__ = ["InternalListener", "internal_app"]

logger = logging.getLogger(__name__)


def internal_app(readiness: ReadinessRegistry) -> Starlette:
    async def metrics(_request: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    async def readyz(_request: Request) -> JSONResponse:
        checks = await readiness.run()
        details: dict[str, Any] = {name: read() for name, read in readiness.details.items()}
        failed = [name for name, result in checks.items() if not result["ok"]]
        body = {"status": "not ready" if failed else "ready", "checks": checks, **details}
        return JSONResponse(body, status_code=503 if failed else 200)

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/metrics", metrics),
            Route("/readyz", readyz),
            Route("/healthz", healthz),
        ]
    )


class _Server(uvicorn.Server):
    # The public server owns SIGTERM/SIGINT; this one is stopped by it, never by a signal.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class InternalListener:
    """`internal_app` served on host:port beside the public server, in the same event loop."""

    def __init__(self, app: Starlette, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._server = _Server(
            uvicorn.Config(
                app,
                lifespan="off",
                access_log=False,
                log_config=None,
                server_header=False,
                proxy_headers=False,
            )
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Listen, or raise OSError naming the port (the service then refuses to start)."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise OSError(
                exc.errno, f"internal port {self.host}:{self.port} (TASKMESH_INTERNAL_PORT): {exc}"
            ) from exc
        sock.set_inheritable(True)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started and not self._task.done():
            await asyncio.sleep(0.01)
        if self._task.done():
            self._task.result()
        logger.info("internal listener started", extra={"port": self.port})

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        await self._task
        self._task = None
