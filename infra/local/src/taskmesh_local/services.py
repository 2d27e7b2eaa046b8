"""The four taskmesh services as processes: their environment, and a handle for test fixtures."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from taskmesh_local import broker_users, net, runner, web_console
from taskmesh_local.config import LocalError
from taskmesh_local.install import venv_python
from taskmesh_local.paths import Layout
from taskmesh_local.runner import Part

__all__ = [
    "SERVICE_NAMES",
    "RunningServices",
    "publisher_users_env",
    "service_env",
    "service_part",
    "start_services",
]

# Started in this order, stopped in reverse: the gateway needs auth's JWKS.
SERVICE_NAMES = ("auth", "tasks", "analytics", "gateway")

ADMIN_EMAIL = "admin@taskmesh.local"
# The services whose events consumers accept only from their broker user
# (taskmesh_common.events.schemas.EVENT_OWNERS).
EVENT_OWNERS = ("auth", "tasks")
PUBLISHER_USERS_VAR = "TASKMESH_EVENT_PUBLISHER_USERS"
# Where the gateway connects to the other services from.
GATEWAY_ADDRESS = "127.0.0.1/32"


def service_env(
    name: str,
    ports: Mapping[str, int],
    *,
    defaults: Mapping[str, str],
    user_env: Mapping[str, str],
    internal_ports: Mapping[str, int] | None = None,
) -> dict[str, str]:
    """The environment of one service.

    ``defaults`` (backing URLs, the admin password...) give way to what the user exported;
    the service's own host and ports and its peers' URLs are always ours, since they must
    match the ports we start the services on. ``internal_ports``: where each one's /metrics
    and detailed readiness listen (taskmesh_common.internal).

    When ``TASKMESH_<NAME>_AMQP_URL`` (the service's own broker user, from a test-servers env
    file) points at the broker of ``TASKMESH_AMQP_URL``, the service connects with it; no
    service gets another one's broker password.
    """
    if name == "gateway" and (site := web_console.built_console()) is not None:
        # The web console at the gateway's `/`, when `install` built it.
        defaults = {"TASKMESH_CONSOLE_DIR": str(site), **defaults}
    peers = {f"TASKMESH_{peer.upper()}_URL": f"http://127.0.0.1:{ports[peer]}" for peer in ports}
    # Behind the gateway, X-Forwarded-For is believed from the gateway alone, which here runs
    # on 127.0.0.1; the gateway's own proxies (none by default) are the user's to set.
    behind_gateway = {"TASKMESH_TRUSTED_PROXIES": GATEWAY_ADDRESS} if name != "gateway" else {}
    merged = {"TASKMESH_ENV": "development", **defaults, **user_env}
    own = merged.get(broker_users.url_var(name), "")
    if own and _same_server(own, merged.get("TASKMESH_AMQP_URL", "")):
        merged["TASKMESH_AMQP_URL"] = own
    return {
        **broker_users.without_service_urls(merged),
        **peers,
        **behind_gateway,
        "TASKMESH_HOST": "127.0.0.1",
        "TASKMESH_PORT": str(ports[name]),
        **({"TASKMESH_INTERNAL_PORT": str(internal_ports[name])} if internal_ports else {}),
    }


def publisher_users_env(user_env: Mapping[str, str]) -> dict[str, str]:
    """``TASKMESH_EVENT_PUBLISHER_USERS`` for services started with ``user_env``.

    An owner of event types without a broker user of its own there (no
    ``TASKMESH_<NAME>_AMQP_URL`` on that broker) publishes as the user of
    ``TASKMESH_AMQP_URL``, the broker's admin on test servers; consumers must accept it.
    Empty when each owner has its own user, or the variable is set already.
    """
    if PUBLISHER_USERS_VAR in user_env:
        return {}
    shared = user_env.get("TASKMESH_AMQP_URL", "")
    pairs = []
    for owner in EVENT_OWNERS:
        own = user_env.get(broker_users.url_var(owner), "")
        url = own if own and _same_server(own, shared) else shared
        user = unquote(urlsplit(url).username or "") or "guest"
        if user != owner:
            pairs.append(f"{owner}={user}")
    return {PUBLISHER_USERS_VAR: ",".join(pairs)} if pairs else {}


def _same_server(url: str, other: str) -> bool:
    a, b = urlsplit(url), urlsplit(other)
    return (a.hostname, a.port) == (b.hostname, b.port)


def service_part(
    name: str,
    port: int,
    port_var: str,
    env: Mapping[str, str],
    *,
    python: Path | None = None,
    ready_path: str = "/readyz",
    start_timeout: float = 60.0,
    internal_port: tuple[int, str] | None = None,
) -> Part:
    module = f"{name}_service"
    return Part(
        name=name,
        argv=(str(python or venv_python()), "-m", module),
        marker=module,
        ports=((port, port_var), *((internal_port,) if internal_port else ())),
        ready=lambda: net.http_status(("127.0.0.1", port), ready_path) == 200,
        env=dict(env),
        start_timeout=start_timeout,
        stop_timeout=15.0,
    )


@dataclass
class RunningServices:
    """Services started by :func:`start_services`; ``stop()`` (or leaving ``with``) ends them."""

    ports: dict[str, int]
    layout: Layout
    # Each service's internal listener: /metrics and detailed /readyz.
    internal_ports: dict[str, int] = field(default_factory=dict)
    parts: list[Part] = field(default_factory=list)
    _children: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _own_dir: bool = False

    @property
    def urls(self) -> dict[str, str]:
        return {name: f"http://127.0.0.1:{port}" for name, port in self.ports.items()}

    @property
    def gateway_url(self) -> str:
        return self.urls["gateway"]

    @property
    def internal_urls(self) -> dict[str, str]:
        return {name: f"http://127.0.0.1:{port}" for name, port in self.internal_ports.items()}

    def stop(self) -> None:
        for part in reversed(self.parts):
            runner.stop(self.layout, part)
        self.parts.clear()
        runner.reap(self._children)
        if self._own_dir:
            shutil.rmtree(self.layout.base, ignore_errors=True)

    def __enter__(self) -> RunningServices:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.stop()


def start_services(
    env: Mapping[str, str],
    *,
    ports: Mapping[str, int] | None = None,
    internal_ports: Mapping[str, int] | None = None,
    log_dir: Path | None = None,
    names: tuple[str, ...] = SERVICE_NAMES,
    python: Path | None = None,
    timeout: float = 60.0,
) -> RunningServices:
    """Start the services on free ports (or ``ports``, and ``internal_ports`` for their
    internal listeners) and wait until each ``/readyz`` is 200.

    ``env`` is laid over the current environment: give it the backing URLs
    (``TASKMESH_MONGO_URL``...) and any setting the suite needs. Logs, pid files go in
    ``log_dir`` (a temporary folder, removed on stop, when omitted). On failure the
    services already started are stopped and :class:`LocalError` carries the log's tail.
    """
    free = iter(net.free_ports(2 * len(names)))
    chosen = dict(ports) if ports else {name: next(free) for name in names}
    internal = dict(internal_ports) if internal_ports else {name: next(free) for name in names}
    own_dir = log_dir is None
    base = Path(tempfile.mkdtemp(prefix="taskmesh-services-")) if log_dir is None else log_dir
    running = RunningServices(
        ports=chosen, internal_ports=internal, layout=Layout(base), _own_dir=own_dir
    )
    user_env = {**os.environ, **env}
    user_env |= publisher_users_env(user_env)
    inherited = broker_users.without_service_urls(user_env)
    try:
        # The gateway last: it fetches auth's keys and proxies to the rest.
        for group in ([n for n in names if n != "gateway"], [n for n in names if n == "gateway"]):
            starting = []
            for name in group:
                part = service_part(
                    name,
                    chosen[name],
                    f"port of {name}",
                    service_env(
                        name, chosen, defaults={}, user_env=user_env, internal_ports=internal
                    ),
                    python=python,
                    start_timeout=timeout,
                    internal_port=(internal[name], f"internal port of {name}"),
                )
                proc = runner.start(running.layout, part, inherited)
                running.parts.append(part)
                running._children.append(proc)
                starting.append(
                    runner.Starting(
                        part,
                        proc.pid,
                        running.layout.log(name),
                        proc,
                        what=f"{name} (GET /readyz on port {chosen[name]})",
                    )
                )
            runner.wait_all(starting)
    except (LocalError, OSError):
        running.stop()
        raise
    return running
