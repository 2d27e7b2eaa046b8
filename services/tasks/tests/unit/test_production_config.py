"""Tasks in production: credentials for MongoDB and the broker; it has no Redis."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from tasks_service.config import Settings

URLS = {
    "mongo_url": "mongodb+srv://taskmesh-tasks:Zq8-real@mongo.example.com/",
    "amqp_url": "amqps://taskmesh-tasks:Vt3-real@rabbitmq.example.com:5671/taskmesh",
}


def test_tasks_starts_in_production_without_a_redis_url() -> None:
    assert Settings(env="production", redis_url="redis://127.0.0.1:6379/0", **URLS).env == (
        "production"
    )


def test_tasks_refuses_the_default_broker_user_in_production() -> None:
    with pytest.raises(ValidationError, match=r"TASKMESH_AMQP_URL.*'guest'"):
        Settings(env="production", **{**URLS, "amqp_url": "amqp://guest:guest@rabbitmq:5672/"})
