"""Auth in production: real credentials for its three servers, no placeholder admin password."""

from __future__ import annotations

import pytest
from auth_service.adapters.key_wrapping import new_key
from auth_service.config import Settings
from pydantic import SecretStr, ValidationError

URLS = {
    "mongo_url": "mongodb+srv://taskmesh-auth:Zq8-real@mongo.example.com/",
    "amqp_url": "amqps://taskmesh-auth:Vt3-real@rabbitmq.example.com:5671/taskmesh",
    "redis_url": "rediss://:Kp5-real@redis.example.com:6380/0",
}
KEK = {"key_encryption_key": SecretStr(new_key())}


def test_auth_starts_in_production_with_real_credentials() -> None:
    settings = Settings(
        env="production",
        bootstrap_admin_email="admin@example.com",
        bootstrap_admin_password=SecretStr("a long real passphrase"),
        **URLS,
        **KEK,
    )
    assert settings.env == "production"


@pytest.mark.parametrize("server", ["mongo_url", "amqp_url", "redis_url"])
def test_auth_refuses_each_of_its_servers_without_credentials(server: str) -> None:
    bare = {"mongo_url": "mongodb://m:27017", "amqp_url": "amqp://q/", "redis_url": "redis://r/0"}
    with pytest.raises(ValidationError, match=f"TASKMESH_{server.upper()}"):
        Settings(env="production", **{**URLS, server: bare[server]}, **KEK)


def test_auth_refuses_the_example_bootstrap_password_in_production() -> None:
    with pytest.raises(ValidationError, match="TASKMESH_BOOTSTRAP_ADMIN_PASSWORD"):
        Settings(
            env="production",
            bootstrap_admin_email="admin@example.com",
            bootstrap_admin_password=SecretStr("Change-Me-Later"),
            **URLS,
            **KEK,
        )


def test_auth_refuses_production_without_a_key_encryption_key() -> None:
    with pytest.raises(ValidationError, match="TASKMESH_KEY_ENCRYPTION_KEY is not set"):
        Settings(env="production", **URLS)


@pytest.mark.parametrize("value", ["change-me", "", "c2hvcnQ=", "x" * 44])
def test_auth_refuses_a_placeholder_or_malformed_key_encryption_key(value: str) -> None:
    with pytest.raises(ValidationError, match="TASKMESH_KEY_ENCRYPTION_KEY"):
        Settings(env="production", key_encryption_key=SecretStr(value), **URLS)
