"""The backing servers as :class:`Part` s: PostgreSQL with DocumentDB and FerretDB v2 in front
(the MongoDB protocol), RabbitMQ (with its own epmd), Redis, Jaeger.

Every server listens on 127.0.0.1 only and keeps its data in ``layout.data(<name>)``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from taskmesh_local import broker_users, cluster, net
from taskmesh_local.config import LocalError
from taskmesh_local.paths import Layout
from taskmesh_local.runner import Part

__all__ = [
    "RabbitPorts",
    "epmd_part",
    "jaeger_part",
    "mongo_part",
    "postgres_part",
    "rabbitmq_ctl",
    "rabbitmq_part",
    "redis_part",
]

# Debian's /usr/sbin wrappers re-run the scripts as the `rabbitmq` user from /var/lib/rabbitmq;
# the scripts themselves run as whoever calls them, with our folders.
RABBITMQ_SBIN = Path("/usr/lib/rabbitmq/bin")


def _which(program: str, *extra_dirs: Path) -> str:
    for folder in extra_dirs:
        if (folder / program).exists():
            return str(folder / program)
    found = shutil.which(program, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"]))
    if found is None:
        raise LocalError(f"{program} not found; run `python3 -m taskmesh_local install`")
    return found


def postgres_part(layout: Layout, *, throwaway: bool = False) -> Part:
    """The PostgreSQL cluster under the engine, on a Unix socket only (no TCP port)."""
    return Part(
        name="postgres",
        argv=cluster.postgres_argv(layout, throwaway=throwaway),
        marker="postgres",
        ports=(),
        ready=lambda: cluster.postgres_ready(layout),
        start_timeout=60.0,
        stop_timeout=30.0,
        prepare=lambda: cluster.ensure_cluster(layout),
        user=cluster.cluster_user(),
    )


def mongo_part(layout: Layout, binary: Path, port: int, port_var: str) -> Part:
    """FerretDB v2 serving the MongoDB protocol on ``port``, stored by DocumentDB in the
    PostgreSQL cluster of :func:`postgres_part` (which must be ready first)."""
    state = layout.data("mongo")

    def prepare() -> None:
        state.mkdir(parents=True, exist_ok=True)
        cluster.create_extension(layout)

    return Part(
        name="mongo",
        argv=(
            str(binary),
            f"--postgresql-url={cluster.postgresql_url(layout)}",
            f"--listen-addr=127.0.0.1:{port}",
            f"--state-dir={state}",
            "--debug-addr=-",
            "--log-level=warn",
        ),
        marker="ferretdb",
        ports=((port, port_var),),
        # One Go processor: with one per core, Go's idle processors spin and hand work
        # between threads on every command, and on a machine the services share that cost
        # FerretDB ~25 % more CPU a command at the same latency and throughput
        # (docs/performance.md#engine-front).
        env={"GOMAXPROCS": "1"},
        ready=lambda: net.mongo_ping(port),
        start_timeout=60.0,
        prepare=prepare,
    )


def redis_part(layout: Layout, port: int, port_var: str) -> Part:
    data = layout.data("redis")
    return Part(
        name="redis",
        # Append-only file without snapshots: every write survives `down`/`up`.
        argv=(
            _which("redis-server"),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(data),
            "--save",
            "",
            "--appendonly",
            "yes",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
        ),
        marker="redis-server",
        ports=((port, port_var),),
        ready=lambda: net.redis_ping(port),
        start_timeout=20.0,
        prepare=lambda: data.mkdir(parents=True, exist_ok=True),
    )


def epmd_part(port: int, port_var: str, *, name: str = "epmd") -> Part:
    """Erlang's port mapper in the foreground, so that it is ours to stop (no ``-daemon``)."""
    return Part(
        name=name,
        argv=(_which("epmd"), "-port", str(port), "-address", "127.0.0.1"),
        marker="epmd",
        ports=((port, port_var),),
        ready=lambda: net.port_open(port),
        env={"ERL_EPMD_ADDRESS": "127.0.0.1", "ERL_EPMD_PORT": str(port)},
        start_timeout=10.0,
    )


@dataclass(frozen=True)
class RabbitPorts:
    amqp: int
    dist: int
    epmd: int
    management: int | None = None


def _rabbitmq_env(layout: Layout, ports: RabbitPorts) -> dict[str, str]:
    base = layout.data("rabbitmq")
    conf = layout.conf("rabbitmq")
    return {
        "RABBITMQ_NODENAME": f"taskmesh-{ports.amqp}@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(ports.amqp),
        "RABBITMQ_DIST_PORT": str(ports.dist),
        "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
        "RABBITMQ_LOG_BASE": str(layout.base / "log" / "rabbitmq"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(conf / "enabled_plugins"),
        "RABBITMQ_CONFIG_FILE": str(conf / "rabbitmq.conf"),
        # Otherwise the Debian defaults (/etc/rabbitmq/rabbitmq-env.conf, /var/lib) leak in.
        "RABBITMQ_CONF_ENV_FILE": str(conf / "rabbitmq-env.conf"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(conf / "advanced.config"),
        "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"),
        "RABBITMQ_LOGS": "-",
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        "ERL_EPMD_PORT": str(ports.epmd),
        # The Erlang cookie lives in $HOME; rabbitmqctl must see the same one.
        "HOME": str(base),
    }


def rabbitmq_ctl(layout: Layout, ports: RabbitPorts, *args: str, timeout: float = 30.0) -> None:
    env = {**os.environ, **_rabbitmq_env(layout, ports)}
    subprocess.run(
        [_which("rabbitmqctl", RABBITMQ_SBIN), "-n", env["RABBITMQ_NODENAME"], *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=timeout,
        check=True,
    )


def rabbitmq_part(
    layout: Layout,
    ports: RabbitPorts,
    port_vars: dict[str, str],
    *,
    users: Mapping[str, str] | None = None,
    exchange: str = broker_users.EVENTS_EXCHANGE,
) -> Part:
    """RabbitMQ in the foreground; ``management`` adds the UI (slower start, skip in tests).

    ``users`` (service -> password) are loaded at boot with the permissions of
    :mod:`taskmesh_local.broker_users`; without them the broker keeps the users it has.
    """
    conf = layout.conf("rabbitmq")

    def prepare() -> None:
        conf.mkdir(parents=True, exist_ok=True)
        (layout.data("rabbitmq") / "mnesia").mkdir(parents=True, exist_ok=True)
        lines = [f"listeners.tcp.default = 127.0.0.1:{ports.amqp}"]
        plugins = "[]."
        if ports.management is not None:
            lines += [f"management.tcp.port = {ports.management}", "management.tcp.ip = 127.0.0.1"]
            plugins = "[rabbitmq_management]."
        if users is not None:
            broker_users.write_definitions(conf / "definitions.json", users, exchange)
            lines.append(f"load_definitions = {conf / 'definitions.json'}")
        (conf / "rabbitmq.conf").write_text("\n".join(lines) + "\n")
        (conf / "enabled_plugins").write_text(plugins + "\n")
        (conf / "rabbitmq-env.conf").write_text("")
        (conf / "advanced.config").write_text("[].\n")

    listen = [(ports.amqp, port_vars["amqp"]), (ports.dist, port_vars["amqp_dist"])]
    if ports.management is not None:
        listen.append((ports.management, port_vars["amqp_management"]))
    return Part(
        name="rabbitmq",
        argv=(_which("rabbitmq-server", RABBITMQ_SBIN),),
        marker="rabbitmq-server",
        ports=tuple(listen),
        ready=lambda: net.amqp_ready(ports.amqp),
        env=_rabbitmq_env(layout, ports),
        cwd=layout.data("rabbitmq"),
        start_timeout=90.0,
        stop_timeout=15.0,
        graceful_stop=lambda: rabbitmq_ctl(layout, ports, "stop", timeout=30.0),
        prepare=prepare,
    )


def _jaeger_config(
    ui: int, grpc: int, otlp_grpc: int, otlp_http: int, assets: Path | None = None
) -> str:
    # Memory storage, OTLP in, query API and web UI out; nothing else listens (no metrics,
    # no zipkin). Without built assets the UI is Jaeger's placeholder page.
    ui_assets = f'\n    ui:\n      assets_path: "{assets}"' if assets is not None else ""
    return f"""\
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    resource:
      service.name: jaeger
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_query:
    # Otherwise the query service traces itself to localhost:4317 and waits on it at exit.
    enable_tracing: false{ui_assets}
    storage:
      traces: memstore
    http:
      endpoint: "127.0.0.1:{ui}"
    grpc:
      endpoint: "127.0.0.1:{grpc}"
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: "127.0.0.1:{otlp_grpc}"
      http:
        endpoint: "127.0.0.1:{otlp_http}"
processors:
  batch:
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
"""


def jaeger_part(
    layout: Layout,
    binary: Path,
    *,
    ui: tuple[int, str],
    grpc: tuple[int, str],
    otlp_grpc: tuple[int, str],
    otlp_http: tuple[int, str],
    ui_assets: Path | None = None,
) -> Part:
    """Jaeger v2 with memory storage; ``ui_assets``: a built jaeger-ui to serve at ``ui``."""
    config = layout.conf("jaeger") / "config.yaml"

    def prepare() -> None:
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(_jaeger_config(ui[0], grpc[0], otlp_grpc[0], otlp_http[0], ui_assets))

    return Part(
        name="jaeger",
        argv=(str(binary), "--config", str(config)),
        marker="jaeger",
        ports=(ui, grpc, otlp_grpc, otlp_http),
        ready=lambda: (
            net.http_status(("127.0.0.1", ui[0]), "/api/services") == 200
            and net.port_open(otlp_http[0])
        ),
        start_timeout=30.0,
        prepare=prepare,
    )
