"""The services' own OpenAPI documents, fetched lazily and cached, last good copy kept."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import aiohttp

from gateway_service.domain.openapi import merge_openapi

__all__ = ["OpenApiCatalog"]

logger = logging.getLogger("gateway.openapi")
_MAX_DOCUMENT_BYTES = 8 * 1024 * 1024


class OpenApiCatalog:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        urls: Mapping[str, str],
        *,
        refresh_seconds: float,
        timeout_seconds: float,
        title: str,
        version: str,
    ) -> None:
        self._session = session
        self._urls = dict(urls)
        self._refresh = refresh_seconds
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._title, self._version = title, version
        self._documents: dict[str, dict[str, Any]] = {}
        self._fetched_at: float | None = None
        self._merged: dict[str, Any] | None = None
        self._lock = asyncio.Lock()

    async def _fetch(self, service: str, base: str) -> dict[str, Any] | None:
        try:
            async with self._session.get(
                f"{base}/openapi.json",
                timeout=self._timeout,
                headers={"Accept": "application/json", "Accept-Encoding": "identity"},
            ) as response:
                if response.status != 200:
                    raise ValueError(f"answered {response.status}")
                raw = await response.content.read(_MAX_DOCUMENT_BYTES + 1)
            if len(raw) > _MAX_DOCUMENT_BYTES:
                raise ValueError("document too large")
            document = json.loads(raw)
            if not isinstance(document, dict) or "paths" not in document:
                raise ValueError("not an OpenAPI document")
            return document
        except Exception as exc:
            # The last good copy stays: a service restarting must not blank the docs.
            logger.warning(
                "could not fetch an upstream's OpenAPI document",
                extra={"upstream": service, "error": f"{type(exc).__name__}: {exc}"[:200]},
            )
            return None

    async def refresh(self) -> None:
        results = await asyncio.gather(
            *(self._fetch(service, base) for service, base in self._urls.items())
        )
        for service, document in zip(self._urls, results, strict=True):
            if document is not None:
                self._documents[service] = document
        self._fetched_at = time.monotonic()
        self._merged = merge_openapi(self._documents, title=self._title, version=self._version)

    def _due(self) -> bool:
        if self._fetched_at is None:
            return True
        # Missing a service: try again sooner, it may just have been starting.
        complete = len(self._documents) == len(self._urls)
        period = self._refresh if complete else min(self._refresh, 5.0)
        return time.monotonic() - self._fetched_at >= period

    async def document(self) -> dict[str, Any]:
        if self._due():
            async with self._lock:
                if self._due():
                    await self.refresh()
        assert self._merged is not None
        return self._merged
