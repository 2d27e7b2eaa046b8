"""Ports of the local stack, each overridable by an environment variable."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

__all__ = ["PORT_VARS", "LocalError", "Ports", "parse_port"]


class LocalError(Exception):
    """A failure the command line reports as one message and a non-zero exit."""


def parse_port(var: str, value: str) -> int:
    try:
        port = int(value.strip())
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise LocalError(f"{var}={value!r} is not a TCP port (1-65535)")
    return port


# field name -> (environment variable, default)
PORT_VARS: dict[str, tuple[str, int]] = {
    "gateway": ("TASKMESH_GATEWAY_PORT", 8080),
    "auth": ("TASKMESH_AUTH_PORT", 8001),
    "tasks": ("TASKMESH_TASKS_PORT", 8002),
    "analytics": ("TASKMESH_ANALYTICS_PORT", 8003),
    "mongo": ("TASKMESH_MONGO_PORT", 27017),
    "amqp": ("TASKMESH_AMQP_PORT", 5672),
    "amqp_management": ("TASKMESH_AMQP_MANAGEMENT_PORT", 15672),
    # Erlang distribution (default: the AMQP port + 20000, as RabbitMQ does) and our own
    # port mapper, kept off 4369 so that a system RabbitMQ's epmd is never ours to stop.
    "amqp_dist": ("TASKMESH_AMQP_DIST_PORT", 0),
    "epmd": ("TASKMESH_EPMD_PORT", 4370),
    "redis": ("TASKMESH_REDIS_PORT", 6379),
    "jaeger_ui": ("TASKMESH_JAEGER_UI_PORT", 16686),
    "jaeger_grpc": ("TASKMESH_JAEGER_GRPC_PORT", 16685),
    "otlp_grpc": ("TASKMESH_OTLP_GRPC_PORT", 4317),
    "otlp_http": ("TASKMESH_OTLP_HTTP_PORT", 4318),
}


@dataclass(frozen=True)
class Ports:
    gateway: int
    auth: int
    tasks: int
    analytics: int
    mongo: int
    amqp: int
    amqp_management: int
    amqp_dist: int
    epmd: int
    redis: int
    jaeger_ui: int
    jaeger_grpc: int
    otlp_grpc: int
    otlp_http: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Ports:
        env = os.environ if env is None else env
        values = {}
        for name, (var, default) in PORT_VARS.items():
            raw = env.get(var, "")
            values[name] = parse_port(var, raw) if raw.strip() else default
        if not values["amqp_dist"]:
            amqp = values["amqp"]
            values["amqp_dist"] = amqp + 20000 if amqp + 20000 < 65536 else amqp - 20000
        ports = cls(**values)
        ports.check_distinct()
        return ports

    def check_distinct(self) -> None:
        seen: dict[int, str] = {}
        for field in fields(self):
            port = getattr(self, field.name)
            if port in seen:
                raise LocalError(
                    f"{PORT_VARS[field.name][0]} and {PORT_VARS[seen[port]][0]} "
                    f"are both {port}; give each part its own port"
                )
            seen[port] = field.name

    @staticmethod
    def var(name: str) -> str:
        return PORT_VARS[name][0]
