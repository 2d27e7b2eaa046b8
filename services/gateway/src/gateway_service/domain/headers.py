"""Which headers cross the gateway, in each direction."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "IDENTITY_HEADERS",
    "filter_request_headers",
    "filter_response_headers",
    "hide_upstream_origins",
]

# RFC 9110 §7.6.1 connection-specific fields, plus the de-facto ones proxies drop.
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
    }
)

# Headers a client could use to claim an identity an upstream might believe. The services
# verify the token themselves, but nothing downstream should ever see a forged claim.
IDENTITY_HEADERS = frozenset(
    {
        b"x-user-id",
        b"x-user-role",
        b"x-user-email",
        b"x-user",
        b"x-forwarded-user",
        b"x-forwarded-email",
        b"x-remote-user",
        b"remote-user",
        b"x-auth-user",
        b"x-authenticated-user",
        b"x-principal",
    }
)

# Set by the gateway itself (or by aiohttp from the body/URL), never copied from the client;
# x-request-id is the one the gateway settled on (the client's only when it was safe).
_REQUEST_OWNED = frozenset(
    {
        b"host",
        b"content-length",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-request-id",
    }
)
# Written again by our own server and middleware; copying them would duplicate them.
_RESPONSE_OWNED = frozenset({b"content-length", b"date", b"server", b"x-request-id"})


def _connection_named(headers: Iterable[tuple[bytes, bytes]]) -> set[bytes]:
    named: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            named.update(t.strip().lower() for t in value.split(b",") if t.strip())
    return named


def _is_hop_by_hop(name: bytes, named: set[bytes]) -> bool:
    return name in _HOP_BY_HOP or name.startswith(b"proxy-") or name in named


def filter_request_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Client headers minus hop-by-hop, identity claims and those the gateway sets itself."""
    named = _connection_named(headers)
    kept = []
    for raw_name, value in headers:
        name = raw_name.lower()
        if _is_hop_by_hop(name, named) or name in IDENTITY_HEADERS or name in _REQUEST_OWNED:
            continue
        kept.append((name, value))
    return kept


def filter_response_headers(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Upstream headers minus hop-by-hop and those our server writes itself."""
    headers = list(headers)
    named = _connection_named(headers)
    kept = []
    for raw_name, value in headers:
        name = raw_name.lower()
        if _is_hop_by_hop(name, named) or name in _RESPONSE_OWNED:
            continue
        kept.append((name, value))
    return kept


# Response headers whose value is a URI reference a client follows or stores.
_URI_VALUED = frozenset({b"location", b"content-location"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int | None] | None:
    try:
        parts = urlsplit(url.strip())
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return parts.scheme.lower(), parts.hostname.lower(), port


def hide_upstream_origins(
    headers: Iterable[tuple[bytes, bytes]], upstream_urls: Iterable[str]
) -> list[tuple[bytes, bytes]]:
    """`Location`/`Content-Location` at an upstream's own address become origin-relative.

    An upstream builds absolute URLs from the address the gateway reached it by, its internal
    one; the gateway serves the same paths, so the path and query alone point the client at
    the same resource through the gateway, and the internal host never leaves.
    """
    headers = list(headers)
    if not any(name.lower() in _URI_VALUED for name, _ in headers):
        return headers  # the common case: nothing to parse
    origins = {o for o in map(_origin, upstream_urls) if o is not None}
    kept = []
    for name, value in headers:
        if name.lower() in _URI_VALUED:
            text = value.decode("latin-1")
            if _origin(text) in origins:
                parts = urlsplit(text.strip())
                path = parts.path if parts.path.startswith("/") else "/" + parts.path
                value = urlunsplit(("", "", path, parts.query, parts.fragment)).encode("latin-1")
        kept.append((name, value))
    return kept
