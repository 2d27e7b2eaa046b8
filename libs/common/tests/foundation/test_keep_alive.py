"""A service keeps an idle keep-alive connection open longer than the gateway's pool keeps it
(the gateway's side: services/gateway/tests/unit/test_upstream_keep_alive.py).

If the server closed first, a request the gateway sends just as the server closes meets a
reset; a POST cannot be retried, so the client would get a 503 for a healthy upstream.
"""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

SERVICE = textwrap.dedent(
    """
    import sys
    from taskmesh_common.app import create_service_app
    from taskmesh_common.server import serve
    from taskmesh_common.settings import ServiceSettings

    settings = ServiceSettings(service_name="idle", port=int(sys.argv[1]))
    serve(create_service_app(settings, title="idle"), settings)
    """
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _connect(port: int, deadline: float) -> http.client.HTTPConnection:
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.connect()
            return conn
        except OSError:
            conn.close()
            assert time.monotonic() < deadline, "service did not start"
            time.sleep(0.1)


def _healthz(conn: http.client.HTTPConnection) -> int:
    conn.request("GET", "/healthz")
    response = conn.getresponse()
    response.read()
    return response.status


def test_an_idle_connection_is_still_served_after_uvicorns_default_keep_alive(
    tmp_path: Path,
) -> None:
    script = tmp_path / "idle_service.py"
    script.write_text(SERVICE)
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, str(script), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        conn = _connect(port, time.monotonic() + 30)
        try:
            assert _healthz(conn) == 200
            # uvicorn's own default closes an idle connection after 5 s.
            time.sleep(6.5)
            try:
                status = _healthz(conn)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                status = None
            assert status == 200, "the service closed the idle connection"
        finally:
            conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
