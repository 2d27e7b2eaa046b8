"""The local stack: every part on its fixed port, state under ``<checkout>/.local``."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from taskmesh_local import (
    backing,
    engine,
    install,
    jaeger_ui,
    net,
    runner,
    services,
    web_console,
)
from taskmesh_local.config import LocalError, Ports, parse_port
from taskmesh_local.paths import Layout, local_dir
from taskmesh_local.runner import Part

__all__ = ["BACKING_NAMES", "PART_NAMES", "Stack"]

BACKING_NAMES = ("mongo", "rabbitmq", "redis", "jaeger")
PART_NAMES = BACKING_NAMES + services.SERVICE_NAMES
# Not parts of their own: RabbitMQ's port mapper starts and stops with it, and so does the
# PostgreSQL cluster under the MongoDB-protocol front.
EPMD = "rabbitmq-epmd"
POSTGRES = "postgres"
COMPANIONS = {"rabbitmq": EPMD, "mongo": POSTGRES}
INTERNAL_PORTS_FILE = "internal-ports.json"


def internal_port_var(service: str) -> str:
    return f"TASKMESH_{service.upper()}_INTERNAL_PORT"


def _say(message: str) -> None:
    print(message, flush=True)


@dataclass
class Stack:
    layout: Layout
    ports: Ports
    env: Mapping[str, str]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Stack:
        env = dict(os.environ if env is None else env)
        return cls(Layout(local_dir(env)), Ports.from_env(env), env)

    # -- the parts -------------------------------------------------------------------------

    def admin_password(self) -> str:
        path = self.layout.base / "admin-password"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(18) + "\n")
        return path.read_text().strip()

    def urls(self) -> dict[str, str]:
        p = self.ports
        return {
            "gateway": f"http://127.0.0.1:{p.gateway}",
            "web console": f"http://127.0.0.1:{p.gateway}/",
            "API docs": f"http://127.0.0.1:{p.gateway}/docs",
            "auth": f"http://127.0.0.1:{p.auth}",
            "tasks": f"http://127.0.0.1:{p.tasks}",
            "analytics": f"http://127.0.0.1:{p.analytics}",
            "mongo": f"mongodb://127.0.0.1:{p.mongo}",
            "rabbitmq": f"amqp://guest:guest@127.0.0.1:{p.amqp}/",
            "rabbitmq management": f"http://127.0.0.1:{p.amqp_management}",
            "redis": f"redis://127.0.0.1:{p.redis}/0",
            "jaeger": f"http://127.0.0.1:{p.jaeger_ui}",
            "otlp": f"http://127.0.0.1:{p.otlp_http} (gRPC {p.otlp_grpc})",
            **{
                f"{name} internal": f"http://127.0.0.1:{port} (/metrics, /readyz)"
                for name, port in self.internal_ports().items()
            },
        }

    def service_env(self, name: str) -> dict[str, str]:
        p = self.ports
        defaults = {
            "TASKMESH_MONGO_URL": f"mongodb://127.0.0.1:{p.mongo}",
            "TASKMESH_AMQP_URL": f"amqp://guest:guest@127.0.0.1:{p.amqp}/",
            "TASKMESH_REDIS_URL": f"redis://127.0.0.1:{p.redis}/0",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{p.otlp_http}",
            "TASKMESH_BOOTSTRAP_ADMIN_EMAIL": services.ADMIN_EMAIL,
            "TASKMESH_BOOTSTRAP_ADMIN_PASSWORD": self.admin_password(),
        }
        service_ports = {n: getattr(p, n) for n in services.SERVICE_NAMES}
        return services.service_env(
            name,
            service_ports,
            defaults=defaults,
            user_env=self.env,
            internal_ports=self.internal_ports(),
        )

    def internal_ports(self) -> dict[str, int]:
        """Each service's internal listener (/metrics, detailed /readyz):
        ``TASKMESH_<SERVICE>_INTERNAL_PORT``, else a free port picked the first time and kept
        in ``internal-ports.json``, so restarts and ``status`` agree."""
        path = self.layout.base / INTERNAL_PORTS_FILE
        saved: dict[str, int] = json.loads(path.read_text()) if path.exists() else {}
        chosen: dict[str, int] = {}
        for name in services.SERVICE_NAMES:
            var = internal_port_var(name)
            raw = self.env.get(var, "")
            if raw.strip():
                chosen[name] = parse_port(var, raw)
            elif name in saved:
                chosen[name] = int(saved[name])
        missing = [n for n in services.SERVICE_NAMES if n not in chosen]
        if missing:
            taken = {*chosen.values(), *(getattr(self.ports, f.name) for f in fields(self.ports))}
            free = [port for port in net.free_ports(len(missing) + len(taken)) if port not in taken]
            picked = dict(zip(missing, free, strict=False))
            chosen.update(picked)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({**saved, **picked}, indent=2) + "\n")
        return chosen

    def _rabbit_ports(self) -> backing.RabbitPorts:
        p = self.ports
        return backing.RabbitPorts(p.amqp, p.amqp_dist, p.epmd, p.amqp_management)

    def part(self, name: str, *, ready_path: str = "/readyz") -> Part:
        p, layout, var = self.ports, self.layout, Ports.var
        if name == "mongo":
            return backing.mongo_part(
                layout, install.binary_path(install.FERRETDB), p.mongo, var("mongo")
            )
        if name == "redis":
            return backing.redis_part(layout, p.redis, var("redis"))
        if name == EPMD:
            return backing.epmd_part(p.epmd, var("epmd"), name=EPMD)
        if name == POSTGRES:
            return backing.postgres_part(layout)
        if name == "rabbitmq":
            port_vars = {k: var(k) for k in ("amqp", "amqp_dist", "amqp_management")}
            return backing.rabbitmq_part(layout, self._rabbit_ports(), port_vars)
        if name == "jaeger":
            return backing.jaeger_part(
                layout,
                install.binary_path(install.JAEGER),
                ui=(p.jaeger_ui, var("jaeger_ui")),
                grpc=(p.jaeger_grpc, var("jaeger_grpc")),
                otlp_grpc=(p.otlp_grpc, var("otlp_grpc")),
                otlp_http=(p.otlp_http, var("otlp_http")),
                ui_assets=jaeger_ui.built_ui(),
            )
        if name in services.SERVICE_NAMES:
            return services.service_part(
                name,
                getattr(p, name),
                var(name),
                self.service_env(name),
                ready_path=ready_path,
                start_timeout=self.service_timeout(),
                internal_port=(self.internal_ports()[name], internal_port_var(name)),
            )
        raise LocalError(f"unknown part {name!r}; one of: {', '.join(PART_NAMES)}")

    def service_timeout(self) -> float:
        raw = self.env.get("TASKMESH_LOCAL_START_TIMEOUT", "")
        try:
            return float(raw) if raw.strip() else 60.0
        except ValueError as exc:
            raise LocalError(f"TASKMESH_LOCAL_START_TIMEOUT={raw!r} is not a number") from exc

    def refuse_old_engine(self) -> None:
        """Stop with what to do when ``data/mongo`` holds the SQLite files of the engine before
        DocumentDB; they are never deleted here."""
        old = self.layout.data("mongo")
        if any(old.glob("*.sqlite")):
            raise LocalError(
                f"{old} holds databases of the old engine (on SQLite), which the "
                "DocumentDB engine cannot read. Keep them elsewhere or delete them, then run "
                f"`make up` again:  mv {old} {old}.sqlite-old   (or: rm -rf {old})"
            )

    def pid(self, name: str) -> int | None:
        return runner.running_pid(self.layout, self.part(name))

    # -- commands --------------------------------------------------------------------------

    def _start_group(self, names: Sequence[str], *, ready_path: str = "/readyz") -> list[str]:
        """Start those of ``names`` not running, then wait for all of them; the started ones."""
        waiting: list[runner.Starting] = []
        for name in names:
            part = self.part(name, ready_path=ready_path)
            log = self.layout.log(name)
            pid = runner.running_pid(self.layout, part)
            if pid is None:
                _say(f"starting {name}")
                if name in COMPANIONS:
                    self._start_group([COMPANIONS[name]])
                proc = runner.start(self.layout, part, os.environ)
                waiting.append(runner.Starting(part, proc.pid, log, proc))
            elif not part.ready():
                waiting.append(runner.Starting(part, pid, log))
        for name, seconds in runner.wait_all(waiting).items():
            _say(f"  {name} ready in {seconds:.1f}s")
        return [item.part.name for item in waiting]

    def up(self) -> bool:
        """Start everything not running; False if all was already running."""
        if all(self.pid(name) is not None for name in PART_NAMES):
            if all(self.part(name).ready() for name in PART_NAMES):
                return False
        self.refuse_old_engine()
        install.install()
        started = self._start_group(BACKING_NAMES)
        started += self._start_group([n for n in services.SERVICE_NAMES if n != "gateway"])
        started += self._start_group(["gateway"])
        return bool(started)

    def start(self, name: str) -> bool:
        """Start one part; a service counts as started once /healthz answers (its readiness
        may be 503 while a dependency is down). False if it was already running."""
        if name in ("rabbitmq", "redis"):
            install.ensure_debian_packages()
        elif name == "mongo":
            self.refuse_old_engine()
            install.ensure_debian_packages()
            engine.ensure_extensions()
            install.ensure_binary(install.FERRETDB)
        elif name == "jaeger":
            install.ensure_binary(install.JAEGER)
            jaeger_ui.ensure_ui()
        else:
            install.ensure_venv()
            if name == "gateway":
                web_console.ensure_console()
        return bool(self._start_group([name], ready_path="/healthz"))

    def stop(self, name: str) -> bool:
        stopped = runner.stop(self.layout, self.part(name))
        if name in COMPANIONS:
            runner.stop(self.layout, self.part(COMPANIONS[name]))
        return stopped

    def down(self) -> list[str]:
        """Stop services, then backing servers; the names that were running."""
        stopped = []
        for name in (*reversed(services.SERVICE_NAMES), *reversed(BACKING_NAMES)):
            if self.stop(name):
                stopped.append(name)
        return stopped

    def status(self) -> list[tuple[str, int | None, str, bool]]:
        """(part, pid, port(s), answering) for each part."""
        p = self.ports
        port_text = {
            "mongo": str(p.mongo),
            "rabbitmq": f"{p.amqp},{p.amqp_management}",
            "redis": str(p.redis),
            "jaeger": f"{p.jaeger_ui},{p.otlp_grpc},{p.otlp_http}",
            # The public port, then the internal one (/metrics, detailed /readyz).
            **{n: f"{getattr(p, n)},{port}" for n, port in self.internal_ports().items()},
        }
        rows = []
        for name in PART_NAMES:
            part = self.part(name)
            pid = runner.running_pid(self.layout, part)
            rows.append((name, pid, port_text[name], pid is not None and part.ready()))
        return rows

    def logs(self, names: Sequence[str]) -> int:
        for name in names:
            if name not in PART_NAMES:
                raise LocalError(f"unknown part {name!r}; one of: {', '.join(PART_NAMES)}")
        if names:
            files = [str(self.layout.log(name)) for name in names]
        else:
            every = [self.layout.log(name) for name in PART_NAMES]
            files = [str(f) for f in every if f.exists()] or [str(f) for f in every]
        try:
            return subprocess.call(["tail", "-n", "20", "-F", *files])
        except KeyboardInterrupt:
            return 0

    def log_path(self, name: str) -> Path:
        return self.layout.log(name)


def print_status(stack: Stack) -> None:
    rows = stack.status()
    # A service's PORT column: its public port, then its internal one (/metrics, /readyz).
    print(f"{'PART':<10} {'PID':>7}  {'PORT':<18} STATE")
    for name, pid, ports, ready in rows:
        state = "ready" if ready else ("starting/unhealthy" if pid else "stopped")
        print(f"{name:<10} {pid or '-':>7}  {ports:<18} {state}", file=sys.stdout)
