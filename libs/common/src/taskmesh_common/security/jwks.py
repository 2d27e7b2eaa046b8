"""Where signing keys come from: a JWKS document, fetched over HTTP or supplied in-process."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import aiohttp
import jwt

__all__ = ["HttpJwksSource", "JwksSource", "parse_jwks"]

logger = logging.getLogger("taskmesh.security")

JwksSource = Callable[[], Awaitable[dict[str, Any]]]
"""An async callable returning a JWKS document (`{"keys": [...]}`)."""

# A JWKS is a handful of public keys; anything bigger is not one.
_MAX_JWKS_BYTES = 256 * 1024


def parse_jwks(document: object, algorithms: Collection[str]) -> dict[str, jwt.PyJWK]:
    """The usable verification keys of a JWKS, by kid.

    Keys without a kid, meant for encryption, or of an algorithm we do not accept are
    skipped rather than failing the whole set: one odd key must not lock everyone out.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("a JWKS must be an object with a 'keys' array")
    keys: dict[str, jwt.PyJWK] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict):
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid or entry.get("use", "sig") != "sig":
            continue
        # A private part has no business in a published JWKS; never treat it as ours.
        public = {k: v for k, v in entry.items() if k not in {"d", "p", "q", "dp", "dq", "qi"}}
        try:
            key = jwt.PyJWK(public)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError) as exc:
            logger.warning("skipping unusable JWKS key", extra={"kid": kid, "error": str(exc)})
            continue
        if key.algorithm_name not in algorithms:
            continue
        keys[kid] = key
    return keys


class HttpJwksSource:
    """Fetches a JWKS URL with aiohttp (async: PyJWT's PyJWKClient would block the loop)."""

    def __init__(
        self,
        url: str,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout_seconds: float = 3.0,
    ) -> None:
        self.url = url
        self._session = session
        self._owns_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)

    async def __call__(self) -> dict[str, Any]:
        if self._session is None or self._session.closed:
            # Created lazily: a ClientSession belongs to the running event loop.
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        async with self._session.get(
            self.url, timeout=self._timeout, headers={"Accept": "application/json"}
        ) as response:
            if response.status != 200:
                raise ConnectionError(f"JWKS fetch from {self.url} answered {response.status}")
            body = await response.content.read(_MAX_JWKS_BYTES + 1)
            if len(body) > _MAX_JWKS_BYTES:
                raise ValueError("JWKS document too large")
        document: dict[str, Any] = json.loads(body)
        return document

    async def aclose(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None
