"""Password guessing is throttled per (account, client address): the guesser is refused, the
owner at their own address is not; a ceiling per account bounds many addresses together."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
from auth_service.config import Settings
from fastapi import FastAPI
from taskmesh_common.testing.servers import BackingServers

from .conftest import PASSWORD, make_settings, register, running

pytestmark = pytest.mark.integration

LOGIN = "/api/v1/auth/login"


@contextlib.asynccontextmanager
async def from_address(app: FastAPI, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose TCP peer address, as auth sees it, is `address`."""
    transport = httpx.ASGITransport(app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://auth.test") as client:
        yield client


async def _guess(client: httpx.AsyncClient, email: str, times: int) -> list[int]:
    body = {"email": email, "password": "a wrong guess"}
    return [(await client.post(LOGIN, json=body)).status_code for _ in range(times)]


async def test_a_guesser_is_refused_while_the_owner_at_their_own_address_signs_in(
    app_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = app_client
    owner = await register(client)
    async with (
        from_address(app, "203.0.113.66") as attacker,
        from_address(app, "198.51.100.7") as own,
    ):
        assert await _guess(attacker, owner["email"], 11) == [401] * 10 + [429]
        signed_in = await own.post(LOGIN, json={"email": owner["email"], "password": PASSWORD})
        assert signed_in.status_code == 200, signed_in.text
        # The guesser is still refused, even with the right password: guessing cannot go on.
        refused = await attacker.post(LOGIN, json={"email": owner["email"], "password": PASSWORD})
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) > 0
        # And the owner's own wrong guesses have an allowance of their own.
        assert await _guess(own, owner["email"], 3) == [401] * 3


async def test_many_addresses_together_meet_the_accounts_ceiling(
    backing_servers: BackingServers, events_exchange: str
) -> None:
    settings = make_settings(
        backing_servers, events_exchange, login_max_failures=10, login_max_failures_per_account=25
    )
    async with running(settings) as (app, client):
        owner = await register(client)
        codes: list[int] = []
        for n in range(3):
            async with from_address(app, f"203.0.113.{n + 1}") as guesser:
                codes += await _guess(guesser, owner["email"], 10)
        # 25 guesses in all are allowed, whichever addresses they come from.
        assert codes == [401] * 25 + [429] * 5
        async with from_address(app, "192.0.2.200") as fresh:
            assert await _guess(fresh, owner["email"], 1) == [429]


def test_the_ceiling_must_be_above_what_one_address_may_try(
    backing_servers: BackingServers, events_exchange: str
) -> None:
    with pytest.raises(ValueError, match="LOGIN_MAX_FAILURES_PER_ACCOUNT"):
        make_settings(
            backing_servers,
            events_exchange,
            login_max_failures=10,
            login_max_failures_per_account=10,
        )
    assert isinstance(make_settings(backing_servers, events_exchange), Settings)
