"""Who the client is: the TCP peer, or what a trusted proxy in front of us says it is.

`X-Forwarded-For` is believed only when the TCP peer is a trusted proxy
(`TASKMESH_TRUSTED_PROXIES`, CIDRs, none by default). Then the client is the right-most
entry that is not itself a trusted proxy: every entry to its right was appended by a proxy
we trust, every entry to its left was written by the client and could be anything. With
every entry trusted, the left-most one is the client (a client inside a trusted network).

The gateway sets it to the ingress controller's addresses; the services behind it set it to
the gateway's, and the gateway sends them exactly one entry: the client it decided on.
uvicorn's own proxy-headers support stays off (it trusts 127.0.0.1, which on one host is
every local client).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["ClientAddressMiddleware", "TrustedProxies", "parse_networks"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """CIDRs (or single addresses); ValueError names the first that is neither."""
    networks: list[Network] = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or CIDR") from None
    return tuple(networks)


def _address(value: str) -> Address | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


class TrustedProxies:
    def __init__(self, cidrs: Iterable[str]) -> None:
        self.networks = parse_networks(cidrs)
        # Parsing an address costs microseconds, and the same few (the proxies', the busy
        # clients') come again and again: remember what each text is.
        self._classify = functools.lru_cache(maxsize=4096)(self._classify_text)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def _classify_text(self, value: str) -> tuple[str, bool] | None:
        """(the address in canonical form, whether a trusted proxy has it); None: not one."""
        address = _address(value)
        if address is None:
            return None
        return str(address), any(address in network for network in self.networks)

    def trusts(self, address: str) -> bool:
        known = self._classify(address)
        return known is not None and known[1]

    def client(self, peer: str, forwarded_for: Iterable[str]) -> str:
        """The client's address, given the TCP peer and the X-Forwarded-For header values."""
        known = self._classify(peer)
        if known is None or not known[1]:
            return peer
        client = known[0]
        chain = [part for value in forwarded_for for part in value.split(",") if part.strip()]
        for entry in reversed(chain):
            entry_known = self._classify(entry.strip())
            if entry_known is None:
                # Not an address a proxy of ours would write: stop at the last one we trust.
                break
            client, trusted = entry_known
            if not trusted:
                break
        return client


class ClientAddressMiddleware:
    """Puts the decided client address in `scope["client"]` (what every reader uses), and the
    scheme a trusted proxy saw in `scope["scheme"]`. Installed only with trusted proxies."""

    def __init__(self, app: ASGIApp, proxies: TrustedProxies) -> None:
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] == "http" and client and self.proxies.trusts(client[0]):
            forwarded: list[str] = []
            for name, value in scope["headers"]:
                if name == b"x-forwarded-for":
                    forwarded.append(value.decode("latin-1"))
                elif name == b"x-forwarded-proto":
                    proto = value.decode("latin-1").rsplit(",", 1)[-1].strip().lower()
                    if proto in ("http", "https"):
                        scope["scheme"] = proto
            if forwarded:
                scope["client"] = (self.proxies.client(client[0], forwarded), 0)
        await self.app(scope, receive, send)
