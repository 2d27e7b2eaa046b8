"""Throwaway backing servers for tests: free ports, data in a temporary folder, nothing left after.

In a fixture::

    with start_servers() as servers:
        os.environ.update(servers.env())

From a Makefile, one set for every pytest run::

    python3 -m taskmesh_local test-servers start --dir .local/test-servers
    set -a; . .local/test-servers/env; set +a; ...
    python3 -m taskmesh_local test-servers stop --dir .local/test-servers
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import types
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from taskmesh_local import backing, broker_users, engine, install, jaeger_ui, net, runner
from taskmesh_local.config import LocalError
from taskmesh_local.paths import Layout

__all__ = ["ServerSet", "start_servers", "stop_servers"]

PARTS_FILE = "parts.json"


@dataclass
class ServerSet:
    """Running servers and their URLs; ``stop()`` kills them all."""

    layout: Layout
    mongo_url: str
    amqp_url: str
    redis_url: str
    # Each service's own broker user (service -> AMQP URL); ``amqp_url`` is the admin's.
    service_amqp_urls: dict[str, str] = field(default_factory=dict)
    jaeger_url: str | None = None
    otlp_http_endpoint: str | None = None
    otlp_grpc_endpoint: str | None = None
    start_seconds: dict[str, float] = field(default_factory=dict)
    _children: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _own_dir: bool = False

    def env(self) -> dict[str, str]:
        """``TASKMESH_*`` (and, with Jaeger, ``OTEL_*``) variables pointing at these servers.

        ``TASKMESH_AMQP_URL`` is the broker's admin (for test harnesses); each service's own
        user is in ``TASKMESH_<SERVICE>_AMQP_URL``, which :func:`start_services` gives it.
        """
        values = {
            "TASKMESH_MONGO_URL": self.mongo_url,
            "TASKMESH_AMQP_URL": self.amqp_url,
            "TASKMESH_REDIS_URL": self.redis_url,
        }
        values |= {broker_users.url_var(s): url for s, url in self.service_amqp_urls.items()}
        if self.jaeger_url and self.otlp_http_endpoint and self.otlp_grpc_endpoint:
            values |= {
                "TASKMESH_JAEGER_URL": self.jaeger_url,
                "TASKMESH_OTLP_HTTP_ENDPOINT": self.otlp_http_endpoint,
                "TASKMESH_OTLP_GRPC_ENDPOINT": self.otlp_grpc_endpoint,
                "OTEL_EXPORTER_OTLP_ENDPOINT": self.otlp_http_endpoint,
            }
        return values

    def stop(self) -> None:
        stop_servers(self.layout.base, remove=self._own_dir)
        runner.reap(self._children)

    def __enter__(self) -> ServerSet:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.stop()


def _parts(
    layout: Layout,
    ports: dict[str, int],
    *,
    jaeger: bool,
    broker_passwords: Mapping[str, str] | None = None,
) -> tuple[list[runner.Part], list[runner.Part]]:
    """(parts to start first, parts to start once those are ready)."""
    rabbit = backing.RabbitPorts(amqp=ports["amqp"], dist=ports["dist"], epmd=ports["epmd"])
    rabbit_vars = {"amqp": "amqp port", "amqp_dist": "Erlang distribution port"}
    first = [
        backing.epmd_part(ports["epmd"], "epmd port"),
        backing.postgres_part(layout, throwaway=True),
        backing.redis_part(layout, ports["redis"], "port"),
    ]
    if jaeger:
        first.append(
            backing.jaeger_part(
                layout,
                install.binary_path(install.JAEGER),
                ui=(ports["jaeger_ui"], "port"),
                grpc=(ports["jaeger_grpc"], "port"),
                otlp_grpc=(ports["otlp_grpc"], "port"),
                otlp_http=(ports["otlp_http"], "port"),
                ui_assets=jaeger_ui.built_ui(),
            )
        )
    # RabbitMQ registers with epmd as it boots: epmd must be listening first; FerretDB
    # needs PostgreSQL.
    mongo = backing.mongo_part(
        layout, install.binary_path(install.FERRETDB), ports["mongo"], "port"
    )
    rabbitmq = backing.rabbitmq_part(layout, rabbit, rabbit_vars, users=broker_passwords)
    return first, [rabbitmq, mongo]


def start_servers(
    base_dir: Path | None = None, *, jaeger: bool = False, timeout: float = 120.0
) -> ServerSet:
    """Start MongoDB-protocol (DocumentDB under FerretDB), RabbitMQ and Redis (and Jaeger) on
    free ports.

    Data, logs and pid files go in ``base_dir`` (a temporary folder, removed by ``stop()``,
    when omitted). The binaries must be installed (``python3 -m taskmesh_local install``).
    """
    for spec in (install.FERRETDB, install.JAEGER) if jaeger else (install.FERRETDB,):
        if not install.binary_path(spec).exists():
            raise LocalError(
                f"{install.binary_path(spec)} is missing; run `python3 -m taskmesh_local install`"
            )
    if not engine.extensions_installed():
        raise LocalError(
            "the DocumentDB extensions are missing; run `python3 -m taskmesh_local install`"
        )
    names = ["mongo", "amqp", "dist", "epmd", "redis"]
    if jaeger:
        names += ["jaeger_ui", "jaeger_grpc", "otlp_grpc", "otlp_http"]
    ports = dict(zip(names, net.free_ports(len(names)), strict=True))
    own_dir = base_dir is None
    base = Path(tempfile.mkdtemp(prefix="taskmesh-servers-")) if base_dir is None else base_dir
    base.mkdir(parents=True, exist_ok=True)
    layout = Layout(base.resolve())
    passwords = broker_users.new_passwords()
    servers = ServerSet(
        layout=layout,
        mongo_url=f"mongodb://127.0.0.1:{ports['mongo']}",
        amqp_url=f"amqp://guest:guest@127.0.0.1:{ports['amqp']}/",
        redis_url=f"redis://127.0.0.1:{ports['redis']}/0",
        service_amqp_urls={
            service: broker_users.amqp_url(service, password, ports["amqp"])
            for service, password in passwords.items()
        },
        _own_dir=own_dir,
    )
    if jaeger:
        servers.jaeger_url = f"http://127.0.0.1:{ports['jaeger_ui']}"
        servers.otlp_http_endpoint = f"http://127.0.0.1:{ports['otlp_http']}"
        servers.otlp_grpc_endpoint = f"http://127.0.0.1:{ports['otlp_grpc']}"
    (layout.base / PARTS_FILE).write_text(json.dumps({"ports": ports, "jaeger": jaeger}))
    try:
        for group in _parts(layout, ports, jaeger=jaeger, broker_passwords=passwords):
            starting = []
            for part in group:
                part = replace(part, start_timeout=min(timeout, part.start_timeout))
                proc = runner.start(layout, part, {})
                servers._children.append(proc)
                starting.append(runner.Starting(part, proc.pid, layout.log(part.name), proc))
            took = runner.wait_all(starting)
            servers.start_seconds |= {name: round(secs, 2) for name, secs in took.items()}
    except (LocalError, OSError):
        servers.stop()
        raise
    return servers


def stop_servers(base_dir: Path, *, remove: bool = False) -> None:
    """Stop every server started in ``base_dir``, from this process or another one."""
    layout = Layout(base_dir.resolve())
    try:
        saved = json.loads((layout.base / PARTS_FILE).read_text())
    except (OSError, ValueError):
        saved = None
    if saved is not None:
        first, then = _parts(layout, saved["ports"], jaeger=saved["jaeger"])
        for part in reversed(first + then):
            # No rabbitmqctl here: a throwaway broker has nothing to flush, SIGTERM is quicker.
            runner.stop(layout, replace(part, graceful_stop=None))
    if remove:
        shutil.rmtree(layout.base, ignore_errors=True)
