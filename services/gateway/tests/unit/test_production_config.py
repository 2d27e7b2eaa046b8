"""The gateway in production needs a Redis password and nothing of MongoDB or the broker."""

from __future__ import annotations

import pytest
from gateway_service.config import Settings
from pydantic import ValidationError

REDIS = "rediss://:Kp5-real@redis.example.com:6380/0"


def test_the_gateway_starts_in_production_with_only_a_redis_url() -> None:
    # Its MongoDB and broker URLs stay at their unused, credential-less defaults.
    assert Settings(env="production", redis_url=REDIS).redis_url == REDIS


def test_the_gateway_refuses_a_redis_url_without_password_in_production() -> None:
    with pytest.raises(ValidationError, match="TASKMESH_REDIS_URL"):
        Settings(env="production", redis_url="redis://redis.example.com:6379/0")
