"""Fixtures of the fault suites: whole running suites, driven through the gateway URL.

- `suite`: the four services on the session's shared backing servers (races, hostile input,
  a service away, crashes). Tests may stop, kill and start services; each test starts from
  every service running (`gateway` fixture).
- `outage`: the four services on throwaway backing servers of their own, whose MongoDB,
  RabbitMQ and Redis the tests take away and bring back.

Helpers live in faults_stack.py (process control) and faults_client.py (a client's calls).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from taskmesh_common.testing import unique_name
from taskmesh_common.testing.servers import BackingServers
from taskmesh_local import start_servers

# --import-mode=importlib puts no test folder on sys.path: make the helpers importable.
sys.path.insert(0, str(Path(__file__).parent))

from faults_stack import Backing, Outage, Suite

ADMIN_EMAIL = "faults-admin@example.com"
ADMIN_PASSWORD = "faults admin password"


def isolation_env(label: str) -> dict[str, str]:
    """Names of our own on shared servers, and the settings every fault suite runs with."""
    name = unique_name(label)
    return {
        "TASKMESH_MONGO_DB_PREFIX": f"{name}_",
        "TASKMESH_EVENTS_EXCHANGE": name,
        "TASKMESH_QUEUE_PREFIX": f"{name}.",
        "TASKMESH_REDIS_PREFIX": f"{name}:",
        # Many accounts and requests from 127.0.0.1 (the fuzzer, load); the per-account login
        # failure limit stays on. Limits themselves are tested on a second gateway.
        "TASKMESH_RATE_LIMIT_AUTH": "100000/minute",
        "TASKMESH_RATE_LIMIT_ANON": "100000/minute",
        "TASKMESH_RATE_LIMIT_USER": "100000/minute",
        "TASKMESH_BOOTSTRAP_ADMIN_EMAIL": ADMIN_EMAIL,
        "TASKMESH_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
        # A breaker that half-opens after 3 s instead of 10 keeps the recovery tests short.
        "TASKMESH_BREAKER_RESET_TIMEOUT_SECONDS": "3",
        # Cheap hashes: the suites register hundreds of accounts; Argon2 cost is not tested here.
        "TASKMESH_ARGON2_MEMORY_KIB": "8192",
        "TASKMESH_ARGON2_TIME_COST": "1",
        "TASKMESH_LOG_LEVEL": "WARNING",
        "OTEL_SDK_DISABLED": "true",
    }


@pytest.fixture(scope="session")
def suite(backing_servers: BackingServers) -> Iterator[Suite]:
    env = {
        "TASKMESH_MONGO_URL": backing_servers.mongo_url,
        "TASKMESH_AMQP_URL": backing_servers.amqp_url,
        "TASKMESH_REDIS_URL": backing_servers.redis_url,
        **isolation_env("faults"),
    }
    running = Suite(env)
    try:
        yield running
    finally:
        running.close()


@pytest.fixture
async def gateway(suite: Suite) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the shared suite's gateway, every service running when the test starts."""
    suite.ensure_running()
    async with httpx.AsyncClient(base_url=suite.gateway_url, timeout=20) as client:
        yield client


@pytest.fixture(scope="module")
def outage_stack() -> Iterator[Outage]:
    servers = start_servers()
    try:
        suite = Suite({**servers.env(), **isolation_env("outage")})
        try:
            yield Outage(servers, Backing(servers), suite)
        finally:
            suite.close()
    finally:
        servers.stop()


@pytest.fixture
async def outage(outage_stack: Outage) -> AsyncIterator[tuple[Outage, httpx.AsyncClient]]:
    """Every server and service running when the test starts (an earlier one may have failed
    half-way), and a client of the gateway."""
    outage_stack.backing.ensure_running()
    outage_stack.suite.ensure_running()
    async with httpx.AsyncClient(base_url=outage_stack.suite.gateway_url, timeout=20) as client:
        yield outage_stack, client
