"""A served service answers /metrics and detailed readiness on its internal port only."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx

SERVICE = textwrap.dedent(
    """
    import sys
    from contextlib import asynccontextmanager
    from taskmesh_common.app import create_service_app
    from taskmesh_common.server import serve
    from taskmesh_common.settings import ServiceSettings

    settings = ServiceSettings(
        service_name="probe", port=int(sys.argv[1]), internal_port=int(sys.argv[2])
    )

    async def broken():
        raise ConnectionError("db.internal:27017 refused, user=svc password=hunter2")

    @asynccontextmanager
    async def lifespan(app):
        app.state.readiness.add("mongo", broken)
        app.state.readiness.add_details("upstreams", lambda: {"tasks": {"state": "open"}})
        yield

    app = create_service_app(settings, title="probe", lifespan=lifespan)
    serve(app, settings)
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def service(tmp_path: Path, port: int, internal_port: int) -> Iterator[subprocess.Popen[str]]:
    script = tmp_path / "probe_service.py"
    script.write_text(SERVICE)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(port), str(internal_port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=15)


@asynccontextmanager
async def answering(url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        deadline = time.monotonic() + 30
        while True:
            try:
                if (await client.get("/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"{url} did not answer"
            await asyncio.sleep(0.1)
        yield client


async def test_metrics_and_error_text_are_on_the_internal_port_never_the_public_one(
    tmp_path: Path,
) -> None:
    port, internal_port = free_port(), free_port()
    with service(tmp_path, port, internal_port) as proc:
        async with (
            answering(f"http://127.0.0.1:{port}") as public,
            answering(f"http://127.0.0.1:{internal_port}") as internal,
        ):
            assert (await public.get("/metrics")).status_code == 404
            ready = await public.get("/readyz")
            assert ready.status_code == 503
            assert "hunter2" not in ready.text and "db.internal" not in ready.text
            assert "upstreams" not in ready.json()

            metrics = await internal.get("/metrics")
            assert metrics.status_code == 200
            assert 'service="probe"' in metrics.text and 'status="404"' in metrics.text
            detailed = await internal.get("/readyz")
            assert detailed.status_code == 503
            body = detailed.json()
            assert "db.internal:27017 refused" in body["checks"]["mongo"]["error"]
            assert body["upstreams"] == {"tasks": {"state": "open"}}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) in (0, -signal.SIGTERM)


async def test_a_busy_internal_port_stops_the_service_naming_the_setting(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        with service(tmp_path, free_port(), busy) as proc:
            output, _ = proc.communicate(timeout=30)
    assert proc.returncode != 0
    assert "TASKMESH_INTERNAL_PORT" in output
