"""A login storm, at a small scale: auth bends (it refuses what it cannot hash soon, with
Retry-After) and the rest keeps working.

The suite hashes at the real Argon2 cost (auth's defaults) with its capacity scaled down to
the storm: one hashing slot and a queue of two, so that a few dozen logins at once are more
than auth takes. The per-client rate limits are raised (every client here is 127.0.0.1).
Behaviour is asserted, not timing: every register and login is served or refused with 503 or
429 and Retry-After, never 504; clients that honour Retry-After all get in; a signed-in user
keeps refreshing, listing and reading statistics throughout; no breaker of the gateway opens.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from faults_client import PASSWORD, assert_problem, new_user, record
from faults_stack import Suite
from taskmesh_common.testing import random_email
from taskmesh_common.testing.servers import BackingServers

from conftest import isolation_env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

STORM_USERS = 24
# The longest a storm client keeps coming back; generous: a busy machine is slow, not wrong.
ENTRY_DEADLINE_SECONDS = 120.0
GROUPS = ("auth-credentials", "auth", "tasks", "analytics")


@pytest.fixture(scope="module")
def storm_suite(backing_servers: BackingServers) -> Iterator[Suite]:
    env = {
        "TASKMESH_MONGO_URL": backing_servers.mongo_url,
        "TASKMESH_AMQP_URL": backing_servers.amqp_url,
        "TASKMESH_REDIS_URL": backing_servers.redis_url,
        **isolation_env("storm"),
        "TASKMESH_ARGON2_CONCURRENCY": "1",
        "TASKMESH_ARGON2_QUEUE_LIMIT": "2",
    }
    # The real cost: auth's own Argon2 defaults, not the cheap ones the other suites use.
    for name in ("TASKMESH_ARGON2_MEMORY_KIB", "TASKMESH_ARGON2_TIME_COST"):
        env.pop(name)
    suite = Suite(env)
    try:
        yield suite
    finally:
        suite.close()


@pytest.fixture
async def client(storm_suite: Suite) -> AsyncIterator[httpx.AsyncClient]:
    storm_suite.ensure_running()
    async with httpx.AsyncClient(base_url=storm_suite.gateway_url, timeout=30) as http:
        yield http


def _refusal(response: httpx.Response) -> int:
    """A refusal a client can act on: 503 or 429 problem+json with Retry-After (seconds)."""
    assert_problem(response, (503, 429))
    retry_after = int(response.headers["retry-after"])
    assert retry_after >= 1
    return retry_after


async def _until_in(
    client: httpx.AsyncClient, path: str, body: dict[str, str], served: int, seen: Counter[str]
) -> httpx.Response:
    """A client that honours Retry-After: again after each refusal, until served."""
    deadline = time.monotonic() + ENTRY_DEADLINE_SECONDS
    while True:
        response = await client.post(path, json=body)
        seen[f"{path} {response.status_code}"] += 1
        if response.status_code == served:
            return response
        wait = _refusal(response)
        assert time.monotonic() + wait < deadline, f"{path}: still refused, {dict(seen)}"
        await asyncio.sleep(wait)


async def _storm_client(
    client: httpx.AsyncClient, email: str, seen: Counter[str], *, registered: bool
) -> dict[str, Any]:
    body = {"email": email, "password": PASSWORD}
    if not registered:
        await _until_in(client, "/api/v1/auth/register", body, 201, seen)
    tokens: dict[str, Any] = (await _until_in(client, "/api/v1/auth/login", body, 200, seen)).json()
    return tokens


@contextlib.asynccontextmanager
async def _breaker_states(internal_url: str) -> AsyncIterator[dict[str, set[str]]]:
    """Every state the gateway's breakers were in (its internal listener's /readyz, read over
    and over) while the block ran: a breaker that opened and closed again in between is seen
    too."""
    seen: dict[str, set[str]] = {}
    stop = asyncio.Event()

    async def watch() -> None:
        async with httpx.AsyncClient(base_url=internal_url, timeout=10) as inner:
            while not stop.is_set():
                upstreams = (await inner.get("/readyz")).json()["upstreams"]
                for group, detail in upstreams.items():
                    seen.setdefault(group, set()).add(detail["state"])
                await asyncio.sleep(0.1)

    watcher = asyncio.create_task(watch())
    try:
        yield seen
    finally:
        stop.set()
        await watcher


@contextlib.asynccontextmanager
async def _signed_in_user_working(
    client: httpx.AsyncClient, refresh_token: str, headers: dict[str, str]
) -> AsyncIterator[Counter[str]]:
    """A signed-in user refreshing its token, listing its tasks and reading its statistics
    over and over while the block runs; every answer is counted by route and status."""
    answers: Counter[str] = Counter()
    stop = asyncio.Event()

    async def work() -> None:
        token = refresh_token
        while not stop.is_set():
            refreshed = await client.post("/api/v1/auth/refresh", json={"refresh_token": token})
            answers[f"refresh {refreshed.status_code}"] += 1
            if refreshed.status_code == 200:
                token = refreshed.json()["refresh_token"]
            for route, path in (
                ("list", "/api/v1/tasks"),
                ("summary", "/api/v1/analytics/summary"),
            ):
                answer = await client.get(path, headers=headers)
                answers[f"{route} {answer.status_code}"] += 1

    worker = asyncio.create_task(work())
    try:
        yield answers
    finally:
        stop.set()
        await worker


async def test_a_login_storm_is_served_or_refused_with_retry_after_and_the_rest_keeps_working(
    storm_suite: Suite, client: httpx.AsyncClient
) -> None:
    internal_url = storm_suite.internal_urls["gateway"]
    worker = await new_user(client, "storm-worker")
    login = await client.post(
        "/api/v1/auth/login", json={"email": worker.email, "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    emails = [random_email("storm") for _ in range(STORM_USERS)]
    # Half the clients registered before the storm: they only log in. One at a time, each
    # answered before the next, so none of these is refused.
    for email in emails[::2]:
        await _until_in(
            client, "/api/v1/auth/register", {"email": email, "password": PASSWORD}, 201, Counter()
        )
    seen: Counter[str] = Counter()
    async with (
        _breaker_states(internal_url) as breakers,
        _signed_in_user_working(client, login.json()["refresh_token"], worker.headers) as answers,
    ):
        # All at once: the other half register and log in.
        entered = await asyncio.gather(
            *(
                _storm_client(client, email, seen, registered=i % 2 == 0)
                for i, email in enumerate(emails)
            )
        )

    # Every storm client got in, having been refused on the way: the storm was more than
    # auth takes at once, and what it could not take it refused with Retry-After.
    assert all(tokens["access_token"] for tokens in entered)
    refused = sum(n for key, n in seen.items() if key.endswith((" 503", " 429")))
    assert refused > 0, dict(seen)
    assert not any(key.endswith(" 504") for key in seen), dict(seen)
    # The signed-in user never noticed: every refresh, list and summary was answered 200.
    assert answers["refresh 200"] >= 1 and answers["list 200"] >= 1, dict(answers)
    assert set(answers) == {"refresh 200", "list 200", "summary 200"}, dict(answers)
    # Busy is not broken: no breaker opened during the storm, none counted a refusal.
    never_opened = {group: {"closed"} for group in GROUPS}
    assert {group: breakers.get(group) for group in GROUPS} == never_opened, breakers
    async with httpx.AsyncClient(base_url=internal_url, timeout=10) as inner:
        upstreams = (await inner.get("/readyz")).json()["upstreams"]
    assert {group: upstreams[group]["failures"] for group in GROUPS} == dict.fromkeys(GROUPS, 0)
    record(
        "test_login_storm",
        answers=dict(sorted(seen.items())),
        signed_in_user=dict(answers),
        breakers={group: sorted(states) for group, states in breakers.items()},
    )
