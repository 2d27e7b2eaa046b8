"""Tasks in production: credentials for MongoDB, the broker and Redis (revoked tokens)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from tasks_service.config import Settings

URLS = {
    "mongo_url": "mongodb+srv://taskmesh-tasks:Zq8-real@mongo.example.com/",
    "amqp_url": "amqps://taskmesh-tasks:Vt3-real@rabbitmq.example.com:5671/taskmesh",
    "redis_url": "rediss://:Kp5-real@redis.example.com:6380/0",
}


def test_tasks_starts_in_production_with_credentials_for_all_three() -> None:
    assert Settings(env="production", **URLS).env == "production"


def test_tasks_refuses_a_redis_url_without_password_in_production() -> None:
    # Tasks reads token revocations from Redis.
    with pytest.raises(ValidationError, match="TASKMESH_REDIS_URL"):
        Settings(env="production", **{**URLS, "redis_url": "redis://127.0.0.1:6379/0"})


def test_tasks_refuses_the_default_broker_user_in_production() -> None:
    with pytest.raises(ValidationError, match=r"TASKMESH_AMQP_URL.*'guest'"):
        Settings(env="production", **{**URLS, "amqp_url": "amqp://guest:guest@rabbitmq:5672/"})
