"""Who the client is, as the gateway and auth decide it: never what a client writes itself.

A second gateway believes X-Forwarded-For only from 127.0.0.2 (TASKMESH_TRUSTED_PROXIES),
where a small proxy, standing in for the ingress controller, connects from. Clients connect
from addresses of their own in 127.0.0.0/8, which Linux routes to the loopback interface.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from taskmesh_common.testing import unique_name
from taskmesh_local import RunningServices, start_services

LOGIN = "/api/v1/auth/login"
PROXY_ADDRESS = "127.0.0.2"


@pytest.fixture(scope="module")
def edge_gateway(suite) -> Iterator[RunningServices]:
    env = suite.env | {
        "TASKMESH_RATE_LIMIT_AUTH": "20/minute",
        "TASKMESH_TRUSTED_PROXIES": f"{PROXY_ADDRESS}/32",
        "TASKMESH_REDIS_PREFIX": f"{unique_name('edge')}:",
        "TASKMESH_AUTH_URL": suite.urls["auth"],
        "TASKMESH_TASKS_URL": suite.urls["tasks"],
        "TASKMESH_ANALYTICS_URL": suite.urls["analytics"],
    }
    with start_services(env, names=("gateway",), timeout=60) as running:
        yield running


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()


@contextlib.asynccontextmanager
async def ingress_proxy(gateway_port: int) -> AsyncIterator[int]:
    """A reverse proxy as an ingress controller is one: it appends the address of the client
    it saw to X-Forwarded-For. One request per connection keeps it a few lines."""

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        peer = client_w.get_extra_info("peername")[0]
        head = await client_r.readuntil(b"\r\n\r\n")
        request_line, *fields = head[:-4].split(b"\r\n")
        kept = [f for f in fields if not f.lower().startswith(b"connection:")]
        kept += [b"X-Forwarded-For: " + peer.encode(), b"Connection: close"]
        up_r, up_w = await asyncio.open_connection(
            "127.0.0.1", gateway_port, local_addr=(PROXY_ADDRESS, 0)
        )
        up_w.write(b"\r\n".join([request_line, *kept]) + b"\r\n\r\n")
        body = asyncio.ensure_future(_pipe(client_r, up_w))
        await _pipe(up_r, client_w)
        body.cancel()
        for w in (up_w, client_w):
            w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def _client_from(address: str, base_url: str) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(transport=transport, base_url=base_url, timeout=15)


async def _logins(client: httpx.AsyncClient, body: dict[str, str], n: int, **kw) -> list:
    return [await client.post(LOGIN, json=body, **kw) for _ in range(n)]


async def test_a_spoofed_forwarded_for_from_an_untrusted_peer_changes_nothing(
    api, edge_gateway, problem
) -> None:
    user = await api.new_user()
    body = {"email": user.email, "password": user.password}
    # 127.0.0.1 is not a trusted proxy of this gateway: each header is a lie it ignores.
    async with httpx.AsyncClient(base_url=edge_gateway.gateway_url, timeout=15) as direct:
        answers = [
            await direct.post(LOGIN, json=body, headers={"X-Forwarded-For": f"198.51.100.{i}"})
            for i in range(25)
        ]
    statuses = [r.status_code for r in answers]
    assert statuses == [200] * 20 + [429] * 5, statuses
    problem(answers[20], 429)
    assert answers[20].headers["RateLimit-Policy"] == '"auth";q=20;w=60'


async def test_behind_a_trusted_proxy_two_clients_get_their_own_auth_buckets(
    api, edge_gateway, problem
) -> None:
    greedy, calm = await api.new_user(), await api.new_user()
    port = edge_gateway.ports["gateway"]
    async with ingress_proxy(port) as proxy_port:
        url = f"http://127.0.0.1:{proxy_port}"
        async with _client_from("127.0.0.3", url) as first, _client_from("127.0.0.4", url) as other:
            body = {"email": greedy.email, "password": greedy.password}
            # The client's own X-Forwarded-For entries sit left of the proxy's: never believed.
            answers = [
                await first.post(LOGIN, json=body, headers={"X-Forwarded-For": f"192.0.2.{i}"})
                for i in range(21)
            ]
            statuses = [r.status_code for r in answers]
            assert statuses == [200] * 20 + [429], statuses
            problem(answers[20], 429)
            assert answers[20].headers["RateLimit-Policy"] == '"auth";q=20;w=60'

            calm_body = {"email": calm.email, "password": calm.password}
            welcome = await other.post(LOGIN, json=calm_body)
            assert welcome.status_code == 200, welcome.text
            assert welcome.headers["RateLimit"].startswith('"auth";r=19;')


async def test_behind_a_trusted_proxy_auth_counts_guesses_per_real_client(
    api, edge_gateway, problem
) -> None:
    owner = await api.new_user()
    port = edge_gateway.ports["gateway"]
    async with ingress_proxy(port) as proxy_port:
        url = f"http://127.0.0.1:{proxy_port}"
        async with (
            _client_from("127.0.0.5", url) as attacker,
            _client_from("127.0.0.6", url) as own,
        ):
            guess = {"email": owner.email, "password": "a wrong guess"}
            answers = await _logins(attacker, guess, 11)
            assert [r.status_code for r in answers] == [401] * 10 + [429]
            assert problem(answers[10], 429)["type"].endswith("too-many-failed-logins")
            right = {"email": owner.email, "password": owner.password}
            signed_in = await own.post(LOGIN, json=right)
            assert signed_in.status_code == 200, signed_in.text
            assert (await attacker.post(LOGIN, json=right)).status_code == 429
