"""TASKMESH_ENV=production refuses to start on settings an attacker would thank us for."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from pydantic import SecretStr, ValidationError
from taskmesh_common.settings import BackingServer, ServiceSettings

MONGO = "mongodb+srv://taskmesh-auth:Zq8-real-pass@mongo.example.com/?retryWrites=true"
AMQP = "amqps://taskmesh-auth:Vt3-real-pass@rabbitmq.example.com:5671/taskmesh"
REDIS = "rediss://:Kp5-real-pass@redis.example.com:6380/0"
SAFE: dict[str, Any] = {"mongo_url": MONGO, "amqp_url": AMQP, "redis_url": REDIS}


class WithSecret(ServiceSettings):
    signing_secret: SecretStr = SecretStr("Xy7-a-real-secret")


class RedisOnly(ServiceSettings):
    uses: ClassVar[frozenset[BackingServer]] = frozenset({"redis"})


def refusal(**values: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        WithSecret(env="production", **{**SAFE, **values})
    return str(caught.value)


def test_a_production_configuration_with_real_credentials_is_accepted() -> None:
    settings = WithSecret(env="production", **SAFE)
    assert (settings.mongo_url, settings.amqp_url, settings.redis_url) == (MONGO, AMQP, REDIS)
    # Passwordless MongoDB mechanisms and a Redis password as a parameter are credentials too.
    x509 = "mongodb://mongo.example.com/?authMechanism=MONGODB-X509&tls=true"
    redis_param = "redis://redis.example.com:6379/0?password=Kp5-real-pass"
    assert WithSecret(env="production", **{**SAFE, "mongo_url": x509, "redis_url": redis_param})


@pytest.mark.parametrize(
    ("setting", "value", "reason"),
    [
        ("amqp_url", "amqps://guest:guest@rabbitmq.example.com:5671/", "'guest'"),
        ("amqp_url", "amqp://guest:Vt3-real-pass@rabbitmq.example.com/", "'guest'"),
        ("amqp_url", "amqps://rabbitmq.example.com:5671/taskmesh", "no credentials"),
        ("amqp_url", "amqps://taskmesh-auth@rabbitmq.example.com/", "no credentials"),
        ("redis_url", "rediss://redis.example.com:6380/0", "no password"),
        ("redis_url", "redis://default@redis.example.com:6379/0", "no password"),
        ("mongo_url", "mongodb://mongo.example.com:27017", "no credentials"),
        ("mongo_url", "mongodb+srv://taskmesh-auth@mongo.example.com/", "no credentials"),
    ],
)
def test_production_refuses_urls_without_real_credentials(
    setting: str, value: str, reason: str
) -> None:
    message = refusal(**{setting: value})
    assert f"TASKMESH_{setting.upper()}" in message and reason in message
    # The refusal names the setting, never its value (a password may be in it).
    assert "real-pass" not in message and value not in message


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("mongo_url", "mongodb+srv://taskmesh-auth:change-me@mongo.example.com/"),
        ("amqp_url", "amqps://taskmesh-auth:CHANGE-ME@rabbitmq.example.com/taskmesh"),
        ("redis_url", "rediss://:Change-Me@redis.example.com:6380/0"),
        ("signing_secret", SecretStr("prefix-change-me-suffix")),
        ("jwt_issuer", "taskmesh-change-me"),  # not a secret, still a left-over placeholder
    ],
)
def test_production_refuses_change_me_anywhere_in_any_setting(setting: str, value: Any) -> None:
    message = refusal(**{setting: value})
    assert f"TASKMESH_{setting.upper()}" in message and "change-me" in message


def test_development_keeps_starting_with_the_local_defaults() -> None:
    local = {
        "mongo_url": "mongodb://127.0.0.1:27017",
        "amqp_url": "amqp://guest:guest@127.0.0.1:5672/",
        "redis_url": "redis://127.0.0.1:6379/0",
    }
    settings = WithSecret(env="development", jwt_issuer="change-me", **local)
    assert urls_of(settings) == tuple(local.values()) and settings.jwt_issuer == "change-me"
    # Test runs use the same unauthenticated local servers.
    assert urls_of(WithSecret(env="test", **local)) == tuple(local.values())


def test_production_checks_only_the_backing_servers_a_service_uses() -> None:
    # The gateway talks to Redis alone: its unused MongoDB and broker defaults are not refused.
    assert RedisOnly(env="production", redis_url=REDIS).redis_url == REDIS
    with pytest.raises(ValidationError, match="TASKMESH_REDIS_URL"):
        RedisOnly(env="production")
    with pytest.raises(ValidationError, match="TASKMESH_AMQP_URL"):
        RedisOnly(env="production", redis_url=REDIS, amqp_url="amqp://u:change-me@h/")


def test_production_reads_the_refused_values_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {**SAFE, "env": "production"}.items():
        monkeypatch.setenv(f"TASKMESH_{name.upper()}", value)
    assert ServiceSettings().env == "production"
    monkeypatch.setenv("TASKMESH_AMQP_URL", "amqp://guest:guest@rabbitmq:5672/")
    with pytest.raises(ValidationError, match="TASKMESH_AMQP_URL"):
        ServiceSettings()


def urls_of(settings: ServiceSettings) -> tuple[str, str, str]:
    return settings.mongo_url, settings.amqp_url, settings.redis_url


def test_production_refuses_accepting_an_owners_events_from_the_guest_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    message = refusal(event_publisher_users={"tasks": "taskmesh-tasks", "auth": "guest"})
    assert "TASKMESH_EVENT_PUBLISHER_USERS" in message and "'guest'" in message
    # A test harness publishing as the admin may (env=test), and another user may anywhere.
    monkeypatch.setenv("TASKMESH_EVENT_PUBLISHER_USERS", "auth=guest, tasks=guest")
    assert WithSecret(env="test").event_publisher_users == {"auth": "guest", "tasks": "guest"}
    monkeypatch.setenv("TASKMESH_EVENT_PUBLISHER_USERS", "auth=taskmesh-auth")
    assert WithSecret(env="production", **SAFE).event_publisher_users == {"auth": "taskmesh-auth"}


@pytest.mark.parametrize("value", ["auth", "auth=", "analytics=guest", "atuh=taskmesh-auth"])
def test_event_publisher_users_are_owner_user_pairs_of_owning_services(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("TASKMESH_EVENT_PUBLISHER_USERS", value)
    with pytest.raises(ValidationError) as caught:
        WithSecret(env="test")
    assert "event_publisher_users" in str(caught.value)
