"""Running a service with uvicorn, with a graceful shutdown on SIGTERM."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from taskmesh_common.settings import ServiceSettings

__all__ = ["serve"]


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Serve until SIGTERM/SIGINT; then stop accepting, finish in-flight requests
    (up to `graceful_shutdown_seconds`), run the lifespan's shutdown and close clients."""
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=int(settings.graceful_shutdown_seconds),
        server_header=False,
    )
    uvicorn.Server(config).run()
