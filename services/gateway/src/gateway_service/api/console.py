"""The web console: a built single-page app served at `/`, same origin as the API.

`TASKMESH_CONSOLE_DIR` names the build (web/console, built by `make up` and by the gateway
image): `index.html` is served at `/`, its assets under `/console/`. Asset names carry a
hash of their content, so they are cached for good; the page itself is revalidated every
time, so a new build shows at the next load. Without a build the paths stay 404s.

The console's responses get a strict Content Security Policy: script, style, images and
fetches from this origin only, no inline script or style, no framing.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

__all__ = ["ASSETS_PREFIX", "CONSOLE_CSP", "install_console", "is_console_path"]

logger = logging.getLogger("gateway.console")

ASSETS_PREFIX = "/console"
CONSOLE_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"font-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; "
    b"form-action 'self'; frame-ancestors 'none'"
)
_PAGE_CACHE = "no-cache"
_ASSET_CACHE = b"public, max-age=31536000, immutable"


def is_console_path(path: str) -> bool:
    return path == "/" or path == ASSETS_PREFIX or path.startswith(ASSETS_PREFIX + "/")


class _ImmutableAssets:
    """Starlette's StaticFiles (ETag, Last-Modified, no path escapes), cached for good."""

    def __init__(self, folder: Path) -> None:
        self._files = StaticFiles(directory=folder)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_cached(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 200:
                message["headers"] = [*message.get("headers", []), (b"cache-control", _ASSET_CACHE)]
            await send(message)

        await self._files(scope, receive, send_cached)


def install_console(app: FastAPI, folder: Path | None) -> bool:
    """Serve the console built in `folder`; False (and nothing served) when there is none."""
    if folder is None:
        return False
    index = folder / "index.html"
    if not index.is_file():
        logger.warning("no web console build", extra={"console_dir": str(folder)})
        return False

    async def page(_request: Request) -> Response:
        return FileResponse(index, headers={"Cache-Control": _PAGE_CACHE})

    app.add_route("/", page, methods=["GET", "HEAD"], include_in_schema=False)
    assets = folder / "assets"
    if assets.is_dir():
        app.router.routes.append(Mount(ASSETS_PREFIX, app=_ImmutableAssets(assets)))
    return True
