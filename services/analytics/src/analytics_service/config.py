"""Settings of the analytics service (environment variables TASKMESH_*)."""

from __future__ import annotations

from taskmesh_common.settings import ServiceSettings

__all__ = ["Settings"]


class Settings(ServiceSettings):
    service_name: str = "analytics"
    port: int = 8003
    mongo_db: str = "analytics"
