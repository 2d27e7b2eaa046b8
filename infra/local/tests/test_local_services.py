"""start_services: readiness, a failing start, and stopping, with a stand-in written per test.

The stand-in only serves /healthz and /readyz: these tests are about process handling,
not the services (tests/e2e drives the real ones).
"""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path

import pytest
from taskmesh_local import procs
from taskmesh_local.config import LocalError
from taskmesh_local.services import SERVICE_NAMES, start_services

STAND_IN = """\
import http.server, os, sys

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if os.environ.get("STAND_IN_FAIL") == os.environ["STAND_IN_NAME"]:
            self.send_response(503)
        else:
            self.send_response(200)
        self.end_headers()
        self.wfile.write(os.environ.get("TASKMESH_AUTH_URL", "").encode())

    def log_message(self, *args):
        pass

print("stand-in starting", flush=True)
http.server.HTTPServer(
    (os.environ["TASKMESH_HOST"], int(os.environ["TASKMESH_PORT"])), Handler
).serve_forever()
"""


def _stand_ins(tmp_path: Path) -> dict[str, str]:
    for name in SERVICE_NAMES:
        package = tmp_path / "stand-ins" / f"{name}_service"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "__main__.py").write_text(
            f"import os\nos.environ['STAND_IN_NAME'] = {name!r}\n" + STAND_IN
        )
    return {"PYTHONPATH": str(tmp_path / "stand-ins")}


def _tags_alive(log_dir: Path) -> list[int]:
    return [pid for name in SERVICE_NAMES for pid in procs.tagged_pids(f"{log_dir}#{name}")]


def test_services_start_ready_and_stop(tmp_path: Path) -> None:
    env = _stand_ins(tmp_path)
    log_dir = tmp_path / "logs"
    with start_services(env, log_dir=log_dir, python=Path(sys.executable)) as running:
        with urllib.request.urlopen(f"{running.gateway_url}/readyz", timeout=5) as response:
            assert response.status == 200
            # Each service is told where its peers listen.
            assert response.read().decode() == running.urls["auth"]
        assert len(_tags_alive(log_dir)) == 4
    assert _tags_alive(log_dir) == []
    assert "stand-in starting" in (log_dir / "log" / "gateway.log").read_text()


def test_a_service_never_ready_fails_with_its_log_and_stops_the_rest(tmp_path: Path) -> None:
    env = {**_stand_ins(tmp_path), "STAND_IN_FAIL": "tasks"}
    log_dir = tmp_path / "logs"
    with pytest.raises(LocalError, match=r"tasks .*not ready after 2s(.|\n)*stand-in starting"):
        start_services(env, log_dir=log_dir, python=Path(sys.executable), timeout=2)
    assert _tags_alive(log_dir) == []


def test_a_service_that_exits_fails_at_once(tmp_path: Path) -> None:
    env = _stand_ins(tmp_path)
    (tmp_path / "stand-ins" / "auth_service" / "__main__.py").write_text(
        "print('no config', flush=True)\nraise SystemExit(3)\n"
    )
    began = os.times().elapsed
    with pytest.raises(LocalError, match=r"auth .*exited while starting(.|\n)*no config"):
        start_services(env, log_dir=tmp_path / "logs", python=Path(sys.executable), timeout=30)
    assert os.times().elapsed - began < 20
