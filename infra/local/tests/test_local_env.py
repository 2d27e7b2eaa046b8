"""What each service is started with."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from urllib.parse import urlsplit

from taskmesh_local.services import publisher_users_env, service_env
from taskmesh_local.stack import Stack

PORTS = {"auth": 9001, "tasks": 9002, "analytics": 9003, "gateway": 9080}
SERVICES = ("auth", "tasks", "analytics")


def test_service_env_points_at_its_peers_and_its_own_port() -> None:
    env = service_env("tasks", PORTS, defaults={"TASKMESH_REDIS_URL": "redis://x"}, user_env={})
    assert env["TASKMESH_PORT"] == "9002"
    assert env["TASKMESH_HOST"] == "127.0.0.1"
    assert env["TASKMESH_AUTH_URL"] == "http://127.0.0.1:9001"
    assert env["TASKMESH_ANALYTICS_URL"] == "http://127.0.0.1:9003"
    assert env["TASKMESH_ENV"] == "development"
    assert env["TASKMESH_REDIS_URL"] == "redis://x"


def test_what_the_user_exported_wins_over_defaults_but_not_over_ports() -> None:
    user = {
        "TASKMESH_REDIS_URL": "redis://elsewhere:6379/1",
        "TASKMESH_ENV": "test",
        "TASKMESH_PORT": "1234",
        "TASKMESH_RATE_LIMIT_AUTH": "1000/minute",
    }
    env = service_env("auth", PORTS, defaults={"TASKMESH_REDIS_URL": "redis://x"}, user_env=user)
    assert env["TASKMESH_REDIS_URL"] == "redis://elsewhere:6379/1"
    assert env["TASKMESH_ENV"] == "test"
    assert env["TASKMESH_RATE_LIMIT_AUTH"] == "1000/minute"
    assert env["TASKMESH_PORT"] == "9001"


def test_stack_env_follows_port_variables_and_keeps_one_admin_password(tmp_path: Path) -> None:
    stack = Stack.from_env({"TASKMESH_LOCAL_DIR": str(tmp_path), "TASKMESH_MONGO_PORT": "27999"})
    env = stack.service_env("gateway")
    assert env["TASKMESH_MONGO_URL"] == "mongodb://127.0.0.1:27999"
    # The gateway uses no broker: no broker credentials at all.
    assert env["TASKMESH_AMQP_URL"] == "amqp://127.0.0.1:5672/"
    assert env["TASKMESH_REDIS_URL"] == "redis://127.0.0.1:6379/0"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:4318"
    assert env["TASKMESH_BOOTSTRAP_ADMIN_EMAIL"] == "admin@taskmesh.local"
    password = env["TASKMESH_BOOTSTRAP_ADMIN_PASSWORD"]
    assert len(password) >= 16
    assert stack.service_env("auth")["TASKMESH_BOOTSTRAP_ADMIN_PASSWORD"] == password
    assert (tmp_path / "admin-password").stat().st_mode & 0o077 == 0


def test_a_stale_pid_file_does_not_count_as_running(tmp_path: Path) -> None:
    stack = Stack.from_env({"TASKMESH_LOCAL_DIR": str(tmp_path)})
    pid_file = stack.layout.pid_file("redis")
    pid_file.parent.mkdir(parents=True)
    # Our own pid: alive, but not a redis-server.
    pid_file.write_text(f"{os.getpid()}\n")
    assert stack.pid("redis") is None
    pid_file.write_text("999999999 1\n")
    assert stack.pid("redis") is None


def test_stack_gives_each_service_its_own_broker_user_with_a_kept_password(
    tmp_path: Path,
) -> None:
    stack = Stack.from_env({"TASKMESH_LOCAL_DIR": str(tmp_path)})
    urls = {name: urlsplit(stack.service_env(name)["TASKMESH_AMQP_URL"]) for name in SERVICES}
    assert {name: url.username for name, url in urls.items()} == {n: n for n in SERVICES}
    passwords = {url.password for url in urls.values()}
    assert len(passwords) == 3 and all(p and len(p) >= 16 for p in passwords)
    assert (tmp_path / "broker-passwords").stat().st_mode & 0o077 == 0
    again = Stack.from_env({"TASKMESH_LOCAL_DIR": str(tmp_path)})
    assert again.service_env("tasks")["TASKMESH_AMQP_URL"] == urls["tasks"].geturl()


def test_a_service_gets_its_own_broker_url_from_the_env_file_and_nobody_elses() -> None:
    user = {
        "TASKMESH_AMQP_URL": "amqp://guest:guest@127.0.0.1:5999/",
        "TASKMESH_TASKS_AMQP_URL": "amqp://tasks:t-secret@127.0.0.1:5999/",
        "TASKMESH_AUTH_AMQP_URL": "amqp://auth:a-secret@127.0.0.1:5999/",
    }
    env = service_env("tasks", PORTS, defaults={}, user_env=user)
    assert env["TASKMESH_AMQP_URL"] == "amqp://tasks:t-secret@127.0.0.1:5999/"
    assert "a-secret" not in str(env) and "t-secret" not in str(env).replace(
        env["TASKMESH_AMQP_URL"], ""
    )
    # A service URL of another broker (a stale env file) is not used.
    other = {**user, "TASKMESH_AMQP_URL": "amqp://guest:guest@127.0.0.1:6000/"}
    env = service_env("tasks", PORTS, defaults={}, user_env=other)
    assert env["TASKMESH_AMQP_URL"] == "amqp://guest:guest@127.0.0.1:6000/"


def test_consumers_accept_an_owners_events_from_the_shared_user_only_when_it_has_none() -> None:
    shared = {"TASKMESH_AMQP_URL": "amqp://guest:guest@127.0.0.1:5999/"}
    own = {
        "TASKMESH_AUTH_AMQP_URL": "amqp://auth:a-secret@127.0.0.1:5999/",
        "TASKMESH_TASKS_AMQP_URL": "amqp://tasks:t-secret@127.0.0.1:5999/",
    }
    assert publisher_users_env({**shared, **own}) == {}
    # tasks' own URL is of another broker: tasks publishes as guest.
    stale = {**own, "TASKMESH_TASKS_AMQP_URL": "amqp://tasks:t-secret@127.0.0.1:6000/"}
    assert publisher_users_env({**shared, **stale}) == {
        "TASKMESH_EVENT_PUBLISHER_USERS": "tasks=guest"
    }
    assert publisher_users_env(shared) == {
        "TASKMESH_EVENT_PUBLISHER_USERS": "auth=guest,tasks=guest"
    }
    assert publisher_users_env({}) == {"TASKMESH_EVENT_PUBLISHER_USERS": "auth=guest,tasks=guest"}
    chosen = {**shared, "TASKMESH_EVENT_PUBLISHER_USERS": "auth=ops"}
    assert publisher_users_env(chosen) == {}


def test_stack_gives_auth_alone_a_kept_key_encryption_key(tmp_path: Path) -> None:
    stack = Stack.from_env({"TASKMESH_LOCAL_DIR": str(tmp_path)})
    key = stack.service_env("auth")["TASKMESH_KEY_ENCRYPTION_KEY"]
    assert len(base64.urlsafe_b64decode(key)) == 32
    assert (tmp_path / "key-encryption-key").stat().st_mode & 0o077 == 0
    again = Stack.from_env({"TASKMESH_LOCAL_DIR": str(tmp_path)})
    assert again.service_env("auth")["TASKMESH_KEY_ENCRYPTION_KEY"] == key
    assert all(
        "TASKMESH_KEY_ENCRYPTION_KEY" not in stack.service_env(n)
        for n in ("tasks", "analytics", "gateway")
    )


def test_internal_ports_are_picked_free_once_and_kept(tmp_path: Path) -> None:
    env = {"TASKMESH_LOCAL_DIR": str(tmp_path), "TASKMESH_TASKS_INTERNAL_PORT": "29102"}
    stack = Stack.from_env(env)
    first = stack.internal_ports()
    assert first["tasks"] == 29102
    assert len(set(first.values())) == 4
    public = {stack.ports.gateway, stack.ports.auth, stack.ports.tasks, stack.ports.analytics}
    assert not public & set(first.values())
    # Another command (status, a restart) sees the same ones.
    assert Stack.from_env(env).internal_ports() == first
    for name, port in first.items():
        assert stack.service_env(name)["TASKMESH_INTERNAL_PORT"] == str(port)


def test_services_behind_the_gateway_believe_forwarded_for_from_it_alone() -> None:
    user = {"TASKMESH_TRUSTED_PROXIES": "10.0.0.0/8"}
    for name in ("auth", "tasks", "analytics"):
        env = service_env(name, PORTS, defaults={}, user_env=user)
        assert env["TASKMESH_TRUSTED_PROXIES"] == "127.0.0.1/32"
    # The gateway's own proxies are the user's to set.
    assert (
        service_env("gateway", PORTS, defaults={}, user_env=user)["TASKMESH_TRUSTED_PROXIES"]
        == "10.0.0.0/8"
    )
