"""Where the real backing servers for a test session come from."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["BackingServers", "backing_servers_session", "docker_engine_answers"]


@dataclass(frozen=True)
class BackingServers:
    mongo_url: str
    amqp_url: str
    redis_url: str
    origin: str  # "environment", "testcontainers" or "local"
    # Each service's own broker user (service -> AMQP URL) when the servers have them
    # (taskmesh_local's do); ``amqp_url`` is the broker's admin.
    service_amqp_urls: dict[str, str] = field(default_factory=dict)


def docker_engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


@contextlib.contextmanager
def _from_testcontainers() -> Iterator[BackingServers]:
    from testcontainers.mongodb import MongoDbContainer
    from testcontainers.rabbitmq import RabbitMqContainer
    from testcontainers.redis import RedisContainer

    with (
        MongoDbContainer("mongo:7.0.14") as mongo,
        RabbitMqContainer("rabbitmq:3.13.7-alpine") as rabbit,
        RedisContainer("redis:7.4.1-alpine") as redis,
    ):
        rabbit_host = rabbit.get_container_host_ip()
        rabbit_port = rabbit.get_exposed_port(5672)
        redis_host = redis.get_container_host_ip()
        redis_port = redis.get_exposed_port(6379)
        yield BackingServers(
            mongo_url=mongo.get_connection_url(),
            amqp_url=f"amqp://guest:guest@{rabbit_host}:{rabbit_port}/",
            redis_url=f"redis://{redis_host}:{redis_port}/0",
            origin="testcontainers",
        )


@contextlib.contextmanager
def _from_local_processes() -> Iterator[BackingServers]:
    from taskmesh_local import start_servers

    with start_servers() as servers:
        yield BackingServers(
            mongo_url=servers.mongo_url,
            amqp_url=servers.amqp_url,
            redis_url=servers.redis_url,
            origin="local",
            service_amqp_urls=dict(servers.service_amqp_urls),
        )


@contextlib.contextmanager
def backing_servers_session() -> Iterator[BackingServers]:
    env = {
        k: os.environ.get(k)
        for k in ("TASKMESH_MONGO_URL", "TASKMESH_AMQP_URL", "TASKMESH_REDIS_URL")
    }
    if all(env.values()):
        yield BackingServers(
            mongo_url=env["TASKMESH_MONGO_URL"] or "",
            amqp_url=env["TASKMESH_AMQP_URL"] or "",
            redis_url=env["TASKMESH_REDIS_URL"] or "",
            origin="environment",
            service_amqp_urls={
                service: url
                for service in ("auth", "tasks", "analytics")
                if (url := os.environ.get(f"TASKMESH_{service.upper()}_AMQP_URL"))
            },
        )
    elif docker_engine_answers():
        with _from_testcontainers() as servers:
            yield servers
    else:
        with _from_local_processes() as servers:
            yield servers
