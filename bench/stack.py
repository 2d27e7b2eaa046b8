"""What the benchmarks run against: backing servers, the four services, an nginx, their RSS."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from taskmesh_local import RunningServices, ServerSet, runner, start_services
from taskmesh_local.net import free_ports, port_open

__all__ = [
    "Nginx",
    "Pids",
    "User",
    "child_pids",
    "cpu_seconds",
    "pid_with_argument",
    "rss_mb",
    "server_pids",
    "service_pids",
    "services_running",
    "start_nginx",
]

# Out of the way of the benchmark: a rate limit the run can never reach.
UNLIMITED = "100000000/minute"

# One process, or several read as one (the engine: FerretDB and the PostgreSQL cluster).
Pids = int | tuple[int, ...]


@contextlib.contextmanager
def services_running(
    env: Mapping[str, str], *, tracing: bool, namespace: str = "", limits: bool = False
) -> Iterator[RunningServices]:
    """The four services on free ports; tracing on (10 % sampled, to Jaeger) or off.

    A ``namespace`` keeps this set's databases, exchange and queues apart from another
    set's on the same servers, so that two sets can run side by side. ``limits``: the
    gateway's rate limits as the services' defaults set them (clients must then come from
    addresses of their own; the services behind the gateway believe its X-Forwarded-For, as
    `start_services` sets them up); otherwise out of the way.
    """
    overrides = {**env, "TASKMESH_LOG_LEVEL": "WARNING"}
    if not limits:
        overrides |= {
            "TASKMESH_RATE_LIMIT_USER": UNLIMITED,
            "TASKMESH_RATE_LIMIT_ANON": UNLIMITED,
            "TASKMESH_RATE_LIMIT_AUTH": UNLIMITED,
        }
    if namespace:
        overrides |= {
            "TASKMESH_MONGO_DB_PREFIX": f"{namespace}_",
            "TASKMESH_EVENTS_EXCHANGE": f"taskmesh.events.{namespace}",
            "TASKMESH_QUEUE_PREFIX": f"{namespace}.",
        }
    if tracing:
        overrides |= {
            "OTEL_SDK_DISABLED": "false",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.1",
        }
    else:
        overrides["OTEL_SDK_DISABLED"] = "true"
    running = start_services(overrides, timeout=90)
    try:
        yield running
    finally:
        running.stop()


def service_pids(running: RunningServices) -> dict[str, int]:
    pids = {}
    for part in running.parts:
        pid = runner.running_pid(running.layout, part)
        if pid is not None:
            pids[part.name] = pid
    return pids


def _own_cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) of one process and of its children that ended (as its
    ``wait`` counted them), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # After the command: state is field 3 of stat(5); utime, stime, cutime and cstime are
    # fields 14 to 17.
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: Pids) -> float | None:
    """CPU time (user + system) the processes and their children have used so far, ended
    children included, in seconds: a PostgreSQL cluster's backends come and go under its
    postmaster. None when one of ``pids`` cannot be read."""
    total = 0.0
    for pid in (pids,) if isinstance(pids, int) else pids:
        own = _own_cpu_seconds(pid)
        if own is None:
            return None
        total += own + sum(_own_cpu_seconds(child) or 0.0 for child in child_pids(pid))
    return total


def pid_with_argument(argument: str, *, in_title: bool = False) -> int | None:
    """The process whose command line has ``argument`` (e.g. a server's listen address);
    ``in_title``: a process that rewrote its title into one string (redis-server), ending
    with `` argument``."""
    wanted = argument.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        except OSError:
            continue
        if wanted in args or (in_title and args[0].endswith(b" " + wanted)):
            return int(entry.name)
    return None


def server_pids(servers: ServerSet) -> dict[str, Pids]:
    """The backing servers' processes (those found): the engine (FerretDB and the
    PostgreSQL cluster's postmaster, whose children are its backends and workers),
    RabbitMQ's Erlang VM, Redis, Jaeger."""
    mongo = servers.mongo_url.removeprefix("mongodb://").split("/")[0]
    redis = servers.redis_url.removeprefix("redis://").split("/")[0]
    ferretdb = pid_with_argument(f"--listen-addr={mongo}")
    # The postmaster's command line names its data folder, which no other cluster shares.
    postgres = pid_with_argument(str(servers.layout.data("postgres")))
    found = {
        "engine": (ferretdb, postgres) if ferretdb and postgres else None,
        # The VM's -home is the node's data folder, which no other process names.
        "rabbitmq": pid_with_argument(str(servers.layout.data("rabbitmq"))),
        "redis": pid_with_argument(redis, in_title=True),
        "jaeger": pid_with_argument(str(servers.layout.conf("jaeger") / "config.yaml")),
    }
    return {name: pid for name, pid in found.items() if pid is not None}


def engine_parts(pids: Mapping[str, Pids]) -> dict[str, Pids]:
    """The engine's two halves, to read apart: FerretDB (the wire front) and the PostgreSQL
    cluster (DocumentDB's work happens in its backends)."""
    engine = pids.get("engine")
    if not isinstance(engine, tuple):
        return {}
    ferretdb, postgres = engine
    return {"ferretdb": ferretdb, "postgresql": postgres}


def child_pids(pid: int) -> list[int]:
    """The processes `pid` started (nginx's workers under its master)."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def rss_mb(pid: int) -> float | None:
    """Resident memory (VmRSS) of one process, in MB (10^6 bytes)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) * 1024 / 1e6, 1)
    except OSError:
        return None
    return None


_NGINX_CONF = """\
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    upstream tasks {{
        server {upstream};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://tasks;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
"""


@dataclass
class Nginx:
    url: str
    proc: subprocess.Popen[bytes]
    conf_dir: Path

    def worker_pids(self) -> dict[str, int]:
        """`{"nginx": pid}` of its one worker (empty until the worker runs)."""
        workers = child_pids(self.proc.pid)
        return {"nginx": workers[0]} if len(workers) == 1 else {}

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


def start_nginx(upstream_url: str, conf_dir: Path) -> Nginx:
    """nginx as a plain reverse proxy (one worker, keep-alive upstream), a child process."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    (port,) = free_ports(1)
    (conf_dir / "tmp").mkdir(parents=True, exist_ok=True)
    conf_dir.chmod(0o755)
    (conf_dir / "tmp").chmod(0o777)  # workers drop root privileges when started as root
    upstream = upstream_url.removeprefix("http://").rstrip("/")
    conf = conf_dir / "nginx.conf"
    conf.write_text(_NGINX_CONF.format(dir=conf_dir, upstream=upstream, port=port))
    argv = [nginx, "-p", str(conf_dir), "-e", str(conf_dir / "error.log"), "-c", str(conf)]
    proc = subprocess.Popen(
        [*argv, "-g", "daemon off;"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=(conf_dir / "stderr.log").open("ab"),
    )
    deadline = time.monotonic() + 10
    while not port_open(port, timeout=0.2):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"nginx did not start: {(conf_dir / 'stderr.log').read_text()}")
        time.sleep(0.05)
    return Nginx(url=f"http://127.0.0.1:{port}", proc=proc, conf_dir=conf_dir)


@dataclass
class User:
    email: str
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def new_user(auth_url: str, label: str) -> User:
    email = f"bench-{label}-{uuid.uuid4().hex[:8]}@example.com"
    password = "bench-" + uuid.uuid4().hex
    with httpx.Client(base_url=auth_url, timeout=30) as client:
        client.post(
            "/api/v1/auth/register", json={"email": email, "password": password}
        ).raise_for_status()
        return User(email, password, _login(client, email, password))


def _login(client: httpx.Client, email: str, password: str) -> str:
    response = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def create_tasks(tasks_url: str, user: User, count: int) -> list[dict[str, Any]]:
    created = []
    with httpx.Client(base_url=tasks_url, headers=user.headers, timeout=30) as client:
        for i in range(count):
            response = client.post(
                "/api/v1/tasks",
                json={"title": f"bench task {i}", "priority": "medium", "tags": ["bench"]},
            )
            response.raise_for_status()
            created.append(response.json())
    return created
