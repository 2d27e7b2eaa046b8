"""Settings of the tasks service (environment variables TASKMESH_*)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from taskmesh_common.settings import BackingServer, ServiceSettings

__all__ = ["Settings"]


class Settings(ServiceSettings):
    # MongoDB, the broker, and Redis for revoked tokens (security/revocation.py).
    uses: ClassVar[frozenset[BackingServer]] = frozenset({"mongo", "amqp", "redis"})
    service_name: str = "tasks"
    port: int = 8002
    internal_port: int = 9002
    mongo_db: str = "tasks"
    # How long an Idempotency-Key is remembered (at least; expiry runs about once a minute).
    idempotency_key_seconds: int = Field(default=24 * 3600, ge=1)
    # After user.deleted, the owner's tasks are removed again this much later: a create in
    # flight when auth revoked the token (bounded by the gateway's 15 s deadline) lands first.
    owner_sweep_again_seconds: float = Field(default=30.0, gt=0)
