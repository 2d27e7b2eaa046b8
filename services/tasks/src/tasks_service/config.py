"""Settings of the tasks service (environment variables TASKMESH_*)."""

from __future__ import annotations

from taskmesh_common.settings import ServiceSettings

__all__ = ["Settings"]


class Settings(ServiceSettings):
    service_name: str = "tasks"
    port: int = 8002
    mongo_db: str = "tasks"
