"""A service taken away and brought back: the gateway answers fast 503s, then recovers itself.

The suite's own tasks service keeps serving the other tests, so this module runs a second
tasks replica (same database and queues, as a scaled-out deployment would) behind a gateway
of its own, and stops and starts that replica on the same port, as `make stop/start` does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
from taskmesh_common.testing import unique_name
from taskmesh_local import RunningServices, start_services


@dataclass
class Replica:
    env: dict[str, str]
    port: int
    running: RunningServices | None

    def stop(self) -> None:
        if self.running is not None:
            self.running.stop()
            self.running = None

    def start(self) -> None:
        assert self.running is None
        self.running = start_services(
            self.env, names=("tasks",), ports={"tasks": self.port}, timeout=60
        )


@pytest.fixture(scope="module")
def replica(suite) -> Iterator[Replica]:
    # Peers' URLs must be given: left out, they would default to the reserved ports.
    env = suite.env | {"TASKMESH_AUTH_URL": suite.urls["auth"]}
    running = start_services(env, names=("tasks",), timeout=60)
    replica = Replica(env, running.ports["tasks"], running)
    try:
        yield replica
    finally:
        replica.stop()


@pytest.fixture(scope="module")
def fragile_gateway(suite, replica) -> Iterator[RunningServices]:
    env = suite.env | {
        "TASKMESH_REDIS_PREFIX": f"{unique_name('fragile')}:",
        "TASKMESH_AUTH_URL": suite.urls["auth"],
        "TASKMESH_TASKS_URL": f"http://127.0.0.1:{replica.port}",
        "TASKMESH_ANALYTICS_URL": suite.urls["analytics"],
        "TASKMESH_BREAKER_RESET_TIMEOUT_SECONDS": "2",
    }
    with start_services(env, names=("gateway",), timeout=60) as running:
        yield running


@pytest.fixture
async def fragile(fragile_gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fragile_gateway.gateway_url, timeout=20) as client:
        yield client


async def test_stopped_tasks_service_gives_fast_503s_while_auth_works_then_recovers(
    api, fragile, replica, problem, poll
):
    user = await api.new_user()
    first = await fragile.get("/api/v1/tasks", headers=user.headers)
    assert first.status_code == 200, first.text

    await asyncio.to_thread(replica.stop)
    try:
        for _ in range(8):
            began = time.monotonic()
            response = await fragile.get("/api/v1/tasks", headers=user.headers)
            took = time.monotonic() - began
            problem(response, 503)
            assert int(response.headers["Retry-After"]) >= 1
            assert took < 1.5, f"a 503 took {took:.2f} s"
        create = await fragile.post("/api/v1/tasks", json={"title": "x"}, headers=user.headers)
        problem(create, 503)
        me = await fragile.get("/api/v1/auth/me", headers=user.headers)
        assert me.status_code == 200, "auth keeps working while tasks is away"
    finally:
        await asyncio.to_thread(replica.start)

    async def listing() -> int:
        return (await fragile.get("/api/v1/tasks", headers=user.headers)).status_code

    await poll(listing, lambda status: status == 200, timeout=20)
