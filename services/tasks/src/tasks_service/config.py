"""Settings of the tasks service (environment variables TASKMESH_*)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from taskmesh_common.settings import BackingServer, ServiceSettings

__all__ = ["Settings"]


class Settings(ServiceSettings):
    # MongoDB and the broker; no Redis (production checks no Redis URL here).
    uses: ClassVar[frozenset[BackingServer]] = frozenset({"mongo", "amqp"})
    service_name: str = "tasks"
    port: int = 8002
    internal_port: int = 9002
    mongo_db: str = "tasks"
    # How long an Idempotency-Key is remembered (at least; expiry runs about once a minute).
    idempotency_key_seconds: int = Field(default=24 * 3600, ge=1)
