"""The pytest plugin: session-wide real servers, a hung Redis, and a guard against skipped tests.

With TASKMESH_FORBID_SKIPS=1 (set by `make test` and CI) a run that skipped any test
fails, so integration tests cannot silently vanish.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator

import pytest

from taskmesh_common.testing.servers import BackingServers, backing_servers_session

_skipped: list[str] = []


@pytest.fixture(scope="session")
def backing_servers() -> Iterator[BackingServers]:
    with backing_servers_session() as servers:
        yield servers


@pytest.fixture
async def silent_redis() -> AsyncIterator[str]:
    """The URL of a TCP server that accepts and never answers: a hung Redis."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"redis://127.0.0.1:{port}/0"
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


def pytest_configure(config: pytest.Config) -> None:
    # Tests never export spans unless a test turns tracing on for itself.
    os.environ.setdefault("OTEL_SDK_DISABLED", "true")
    del config


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("TASKMESH_FORBID_SKIPS") == "1" and _skipped and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if os.environ.get("TASKMESH_FORBID_SKIPS") == "1" and _skipped:
        terminalreporter.write_line(
            f"FAILED: {len(_skipped)} test(s) skipped while TASKMESH_FORBID_SKIPS=1: "
            + ", ".join(_skipped[:10]),
            red=True,
        )
