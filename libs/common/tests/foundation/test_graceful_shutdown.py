"""SIGTERM stops a service gracefully: in-flight requests finish, clients close, exit 0."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx

SERVICE = textwrap.dedent(
    """
    import asyncio, sys
    from contextlib import asynccontextmanager
    from fastapi import FastAPI
    from taskmesh_common.app import create_service_app
    from taskmesh_common.server import serve
    from taskmesh_common.settings import ServiceSettings

    settings = ServiceSettings(
        service_name="slow", port=int(sys.argv[1]), internal_port=int(sys.argv[2])
    )

    @asynccontextmanager
    async def lifespan(app):
        yield
        print("clients closed", flush=True)

    app = create_service_app(settings, title="slow", lifespan=lifespan)

    @app.get("/slow")
    async def slow():
        await asyncio.sleep(1.5)
        return {"done": True}

    serve(app, settings)
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_sigterm_finishes_in_flight_requests_then_exits(tmp_path: Path) -> None:
    script = tmp_path / "slow_service.py"
    script.write_text(SERVICE)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(script), str(port), str(free_port())],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            deadline = time.monotonic() + 20
            while True:
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "service did not start"
                await asyncio.sleep(0.1)

            in_flight = asyncio.create_task(client.get("/slow"))
            await asyncio.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.3)
            # New connections are refused while the in-flight request finishes.
            try:
                async with httpx.AsyncClient(timeout=1) as fresh:
                    await fresh.get(f"http://127.0.0.1:{port}/healthz")
                refused = False
            except httpx.TransportError:
                refused = True
            response = await in_flight
        assert response.status_code == 200 and response.json() == {"done": True}
        assert refused
        output, _ = proc.communicate(timeout=15)
        # uvicorn re-raises the signal after its graceful shutdown, as a process killed by it.
        assert proc.returncode in (0, -signal.SIGTERM)
        assert "clients closed" in output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
