"""Settings of the auth service (environment variables TASKMESH_*)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator, model_validator
from taskmesh_common.settings import ServiceSettings

from auth_service.adapters.key_wrapping import SETTING as KEY_ENCRYPTION_KEY_SETTING
from auth_service.adapters.key_wrapping import parse_key

__all__ = ["Settings"]


class Settings(ServiceSettings):
    service_name: str = "auth"
    port: int = 8001
    internal_port: int = 9001
    mongo_db: str = "auth"

    # An admin account created (or promoted) at start-up when both are set; idempotent.
    bootstrap_admin_email: str = ""
    bootstrap_admin_password: SecretStr | None = None

    access_token_ttl_seconds: int = Field(default=900, ge=30, le=900)
    refresh_token_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    # A session (refresh family) ends this long after its login, however often refreshed.
    refresh_absolute_lifetime_seconds: int = Field(default=30 * 24 * 3600, ge=1)

    # Brute force, in one window: failed logins per (account, client address), per client
    # address across accounts, and per account across addresses (the ceiling: many addresses
    # together; see adapters/login_limiter.py).
    login_max_failures: int = Field(default=10, ge=1)
    login_max_failures_per_client: int = Field(default=100, ge=1)
    login_max_failures_per_account: int = Field(default=100, ge=1)
    login_failure_window_seconds: int = Field(default=900, ge=1)

    # Argon2id parameters; changing them re-hashes each password at its next login. OWASP's
    # minimum (19 MiB, 2 passes, 1 lane), chosen by `python -m bench.argon2_cost`: 8x the
    # logins per core of RFC 9106's 64 MiB / t=3 / p=4 at a quarter of the memory per hash
    # (docs/performance.md#argon2).
    argon2_time_cost: int = Field(default=2, ge=1)
    argon2_memory_kib: int = Field(default=19 * 1024, ge=8)
    argon2_parallelism: int = Field(default=1, ge=1)
    # At most this many hashes at once: each takes argon2_memory_kib of RAM and a core.
    argon2_concurrency: int = Field(default=4, ge=1)
    # Admission control: how many hashing requests (login, register) may wait for a slot;
    # past that auth answers 503 with Retry-After at once. Unset: what the slots clear in
    # argon2_queue_seconds at the hash time measured at start-up and then observed.
    argon2_queue_limit: int | None = Field(default=None, ge=0)
    argon2_queue_seconds: float = Field(default=1.0, gt=0)

    # Seals the signing keys' private part in the database (AES-256-GCM): 32 random bytes,
    # base64url. Required in production; without it (development) keys are stored as PEM.
    key_encryption_key: SecretStr | None = None

    # How long a replica keeps signing with the key it loaded before looking for a newer one.
    signing_key_reload_seconds: float = Field(default=30.0, gt=0)
    outbox_poll_seconds: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _ceiling_above_one_address(self) -> Settings:
        # One address alone must never lock the owner out: only many together reach it.
        if self.login_max_failures_per_account <= self.login_max_failures:
            raise ValueError(
                "TASKMESH_LOGIN_MAX_FAILURES_PER_ACCOUNT must be greater than "
                "TASKMESH_LOGIN_MAX_FAILURES"
            )
        return self

    @field_validator("key_encryption_key")
    @classmethod
    def _key_encryption_key_is_32_bytes(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_key(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _production_needs_a_key_encryption_key(self) -> Settings:
        if self.env == "production" and self.key_encryption_key is None:
            raise ValueError(
                f"{KEY_ENCRYPTION_KEY_SETTING} is not set; production keeps the signing keys "
                "encrypted (env=production)"
            )
        return self

    def key_encryption_key_bytes(self) -> bytes | None:
        key = self.key_encryption_key
        return None if key is None else parse_key(key.get_secret_value())
