"""Taking one part of a running suite away and bringing it back, on the same port.

`Suite` wraps the four services started by `taskmesh_local.start_services`: stop (SIGTERM),
kill (SIGKILL) or start one of them again on its port, as `make stop/start SERVICE=x` do.
`Backing` does the same for the parts of a throwaway `ServerSet` (mongo, rabbitmq, redis):
taskmesh_local has no API for one part of a ServerSet, so this rebuilds the part from the
public `backing.*_part` factories and the ports the set recorded in its `parts.json`.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

from taskmesh_local import RunningServices, ServerSet, backing, install, runner, start_services
from taskmesh_local.net import port_open
from taskmesh_local.runner import Part

__all__ = ["Backing", "Outage", "Suite"]

SERVICE_START_TIMEOUT = 60.0


class Suite:
    """The four services on one set of ports; any one of them can be stopped and started."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)
        first = start_services(self.env, timeout=SERVICE_START_TIMEOUT)
        self.ports = dict(first.ports)
        self.internal_ports = dict(first.internal_ports)
        self._handles: list[RunningServices] = [first]
        # Which handle started each service last: stopping goes through that one.
        self._owner = dict.fromkeys(first.ports, first)

    @property
    def urls(self) -> dict[str, str]:
        return {name: f"http://127.0.0.1:{port}" for name, port in self.ports.items()}

    @property
    def gateway_url(self) -> str:
        return self.urls["gateway"]

    @property
    def internal_urls(self) -> dict[str, str]:
        """Each service's internal listener: /metrics and detailed /readyz."""
        return {name: f"http://127.0.0.1:{port}" for name, port in self.internal_ports.items()}

    def _part(self, name: str) -> tuple[RunningServices, Part | None]:
        handle = self._owner[name]
        return handle, next((p for p in handle.parts if p.name == name), None)

    def pid(self, name: str) -> int | None:
        handle, part = self._part(name)
        return None if part is None else runner.running_pid(handle.layout, part)

    def is_running(self, name: str) -> bool:
        return self.pid(name) is not None

    def stop(self, name: str) -> None:
        """SIGTERM (a graceful shutdown), as `make stop SERVICE=name`."""
        handle, part = self._part(name)
        if part is not None:
            runner.stop(handle.layout, part)
            handle.parts.remove(part)

    def kill(self, name: str) -> None:
        """SIGKILL: no shutdown hook runs, in-flight work is cut where it stands."""
        pid = self.pid(name)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            # The leader shows as a zombie while its other threads still exit holding the
            # listening socket: wait for the port, not only for the pid.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and (
                self.pid(name) is not None or port_open(self.ports[name], timeout=0.2)
            ):
                time.sleep(0.02)
        self.stop(name)  # collects whatever the process left (pid file, children)

    def start(self, name: str) -> float:
        """Start the service again on its port; seconds until its /readyz answered 200."""
        began = time.monotonic()
        handle = start_services(
            self.env,
            ports=self.ports,
            internal_ports=self.internal_ports,
            names=(name,),
            timeout=SERVICE_START_TIMEOUT,
        )
        self._handles.append(handle)
        self._owner[name] = handle
        return time.monotonic() - began

    def ensure_running(self) -> None:
        """Start whatever an earlier (failed) test left stopped, the gateway last."""
        for name in self.ports:
            if not self.is_running(name):
                self.start(name)

    def close(self) -> None:
        for handle in reversed(self._handles):
            handle.stop()


class Backing:
    """Stop and start mongo, rabbitmq or redis of a ServerSet, data kept, same port."""

    NAMES = ("mongo", "rabbitmq", "redis")

    def __init__(self, servers: ServerSet) -> None:
        self.servers = servers
        self.layout = servers.layout
        ports = json.loads((self.layout.base / "parts.json").read_text())["ports"]
        rabbit = backing.RabbitPorts(amqp=ports["amqp"], dist=ports["dist"], epmd=ports["epmd"])
        rabbit_vars = {"amqp": "amqp port", "amqp_dist": "Erlang distribution port"}
        ferretdb = install.binary_path(install.FERRETDB)
        self._parts = {
            "mongo": backing.mongo_part(self.layout, ferretdb, ports["mongo"], "port"),
            "redis": backing.redis_part(self.layout, ports["redis"], "port"),
            # SIGTERM, as ServerSet.stop does: rabbitmqctl costs seconds and flushes nothing
            # a confirmed persistent message needs.
            "rabbitmq": replace(
                backing.rabbitmq_part(self.layout, rabbit, rabbit_vars), graceful_stop=None
            ),
        }

    def is_running(self, name: str) -> bool:
        return runner.running_pid(self.layout, self._parts[name]) is not None

    def stop(self, name: str) -> None:
        runner.stop(self.layout, self._parts[name])

    def start(self, name: str) -> float:
        """Start the part again and wait until it answers; the seconds that took."""
        part = self._parts[name]
        proc = runner.start(self.layout, part, dict(os.environ))
        self.servers._children.append(proc)  # reaped by ServerSet.stop()
        took = runner.wait_all([runner.Starting(part, proc.pid, self.layout.log(name), proc)])
        return took[name]

    def ensure_running(self) -> None:
        for name in self.NAMES:
            if not self.is_running(name):
                self.start(name)


@dataclass
class Outage:
    """A suite on servers of its own: `backing` stops and starts mongo, rabbitmq, redis."""

    servers: ServerSet
    backing: Backing
    suite: Suite
