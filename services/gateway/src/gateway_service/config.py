"""Settings of the gateway (environment variables TASKMESH_*)."""

from __future__ import annotations

from taskmesh_common.settings import ServiceSettings

__all__ = ["Settings"]


class Settings(ServiceSettings):
    service_name: str = "gateway"
    port: int = 8080
    tasks_url: str = "http://127.0.0.1:8002"
    analytics_url: str = "http://127.0.0.1:8003"
