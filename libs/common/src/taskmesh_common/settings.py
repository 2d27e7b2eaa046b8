"""One way to configure a service: environment variables with the TASKMESH_ prefix."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["PLACEHOLDER_SECRETS", "ServiceSettings"]

# Values that show a secret was never set for real; refused outside development.
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "changethis", "secret", "password"})


class ServiceSettings(BaseSettings):
    """Settings every service shares; a service subclasses it and adds its own.

    Every field is read from ``TASKMESH_<FIELD>`` (``TASKMESH_MONGO_URL``...).
    """

    model_config = SettingsConfigDict(env_prefix="TASKMESH_", extra="ignore", frozen=True)

    env: Literal["development", "test", "production"] = "development"
    service_name: str = "taskmesh"
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    # Seconds uvicorn waits for in-flight requests after SIGTERM.
    graceful_shutdown_seconds: float = 10.0

    mongo_url: str = "mongodb://127.0.0.1:27017"
    # Each service sets its own default database name; the prefix lets a test run or a
    # shared server keep whole suites apart (TASKMESH_MONGO_DB_PREFIX=e2e_1_ -> e2e_1_tasks).
    mongo_db: str = ""
    mongo_db_prefix: str = ""
    mongo_timeout_seconds: float = 3.0
    # Commands a service has in flight at once (PyMongo's maxPoolSize; the rest queue in
    # the client).
    mongo_max_pool_size: int = Field(default=100, ge=1)
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "taskmesh:"
    events_exchange: str = "taskmesh.events"
    # Every queue a service declares is named after this prefix, so test runs can keep apart.
    queue_prefix: str = ""

    auth_url: str = "http://127.0.0.1:8001"
    jwt_issuer: str = "taskmesh-auth"
    jwt_audience: str = "taskmesh"
    jwks_cache_seconds: float = 300.0
    jwks_refresh_cooldown_seconds: float = 10.0
    jwt_leeway_seconds: float = 5.0
    # Tokens that passed, remembered until they expire (0: verify every request afresh).
    jwt_verified_cache_size: int = 4096

    readiness_timeout_seconds: float = 2.0

    @property
    def is_development(self) -> bool:
        return self.env == "development"

    @model_validator(mode="after")
    def _apply_mongo_db_prefix(self) -> ServiceSettings:
        if self.mongo_db_prefix and not self.mongo_db.startswith(self.mongo_db_prefix):
            # Settings are frozen for everyone else; this is their construction.
            object.__setattr__(self, "mongo_db", self.mongo_db_prefix + self.mongo_db)
        return self

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> ServiceSettings:
        if self.env == "development":
            return self
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr) and value.get_secret_value().strip().lower() in (
                PLACEHOLDER_SECRETS
            ):
                raise ValueError(
                    f"TASKMESH_{name.upper()} is unset or a placeholder; "
                    f"set a real secret (env={self.env})"
                )
        return self
