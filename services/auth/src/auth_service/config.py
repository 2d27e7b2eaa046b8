"""Settings of the auth service (environment variables TASKMESH_*)."""

from __future__ import annotations

from taskmesh_common.settings import ServiceSettings

__all__ = ["Settings"]


class Settings(ServiceSettings):
    service_name: str = "auth"
    port: int = 8001
    mongo_db: str = "auth"
