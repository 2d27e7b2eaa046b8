"""One way to configure a service: environment variables with the TASKMESH_ prefix."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from taskmesh_common.client_address import parse_networks

__all__ = ["PLACEHOLDER_MARK", "PLACEHOLDER_SECRETS", "BackingServer", "ServiceSettings"]

# Values that show a secret was never set for real; refused outside development.
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "changethis", "secret", "password"})
# The examples' placeholder: refused in production anywhere in any setting, secret or not.
PLACEHOLDER_MARK = "change-me"
# RabbitMQ's default user, which every broker image ships.
DEFAULT_BROKER_USER = "guest"
# MongoDB mechanisms that authenticate without a password in the URL.
PASSWORDLESS_MONGO_MECHANISMS = frozenset({"MONGODB-X509", "MONGODB-AWS", "MONGODB-OIDC"})

BackingServer = Literal["mongo", "amqp", "redis"]


def _split_commas(value: Any) -> Any:
    # Comma-separated in the environment, a list in code.
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _valid_networks(value: tuple[str, ...]) -> tuple[str, ...]:
    parse_networks(value)
    return value


Cidrs = Annotated[
    tuple[str, ...], NoDecode, BeforeValidator(_split_commas), AfterValidator(_valid_networks)
]


def _split_pairs(value: Any) -> Any:
    # "owner=user,owner=user" in the environment, a mapping in code.
    if not isinstance(value, str):
        return value
    pairs: dict[str, str] = {}
    for part in _split_commas(value):
        owner, sep, user = part.partition("=")
        if not sep or not owner.strip() or not user.strip():
            raise ValueError("expected owner=user pairs, comma-separated")
        pairs[owner.strip()] = user.strip()
    return pairs


def _known_owners(value: dict[str, str]) -> dict[str, str]:
    from taskmesh_common.events.schemas import EVENT_OWNERS

    unknown = sorted(set(value) - set(EVENT_OWNERS.values()))
    if unknown:
        raise ValueError(f"{', '.join(unknown)} owns no event type")
    return value


PublisherUsers = Annotated[
    dict[str, str], NoDecode, BeforeValidator(_split_pairs), AfterValidator(_known_owners)
]


class ServiceSettings(BaseSettings):
    """Settings every service shares; a service subclasses it and adds its own.

    Every field is read from ``TASKMESH_<FIELD>`` (``TASKMESH_MONGO_URL``...).
    """

    # Errors never echo the input: it holds the URLs with their passwords.
    model_config = SettingsConfigDict(
        env_prefix="TASKMESH_", extra="ignore", frozen=True, hide_input_in_errors=True
    )
    # The backing servers this service connects to; production checks their URLs'
    # credentials (a service leaves the URLs of the others at their unused defaults).
    uses: ClassVar[frozenset[BackingServer]] = frozenset({"mongo", "amqp", "redis"})

    env: Literal["development", "test", "production"] = "development"
    service_name: str = "taskmesh"
    host: str = "127.0.0.1"
    port: int = 8000
    # /metrics and detailed readiness listen here, on `host`; never routed from outside.
    internal_port: int = Field(default=9000, ge=1, le=65535)
    log_level: str = "INFO"
    # The peers whose X-Forwarded-For is believed (CIDRs, comma-separated; none by default):
    # the ingress controller's pods for the gateway, the gateway for the services behind it.
    # See taskmesh_common.client_address.
    trusted_proxies: Cidrs = ()
    # Seconds uvicorn waits for in-flight requests after SIGTERM.
    graceful_shutdown_seconds: float = 10.0
    # Seconds an idle keep-alive connection stays open. A client's pool must let go of an
    # idle connection before the server does (the gateway's upstream pool: 15 s); otherwise a
    # request sent as the server closes meets a reset, and a POST cannot be retried.
    keep_alive_seconds: float = Field(default=75.0, gt=0)

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
    # The broker user whose events of an owning service consumers accept, when it is not the
    # user named after that service ("auth=guest,tasks=guest": a test harness publishing as
    # the broker's admin). See taskmesh_common.events.ownership.
    event_publisher_users: PublisherUsers = Field(default_factory=dict)

    auth_url: str = "http://127.0.0.1:8001"
    jwt_issuer: str = "taskmesh-auth"
    jwt_audience: str = "taskmesh"
    jwks_cache_seconds: float = 300.0
    jwks_refresh_cooldown_seconds: float = 10.0
    jwt_leeway_seconds: float = 5.0
    # Tokens that passed, remembered until they expire (0: verify every request afresh).
    jwt_verified_cache_size: int = 4096
    # Revoked tokens (security/revocation.py): the bound on each Redis check, and whether a
    # write goes through when Redis does not answer (admin decisions are refused then).
    revocation_timeout_seconds: float = Field(default=0.5, gt=0, le=5)
    revocation_fail_open: bool = True

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

    @model_validator(mode="after")
    def _refuse_unsafe_production_settings(self) -> ServiceSettings:
        if self.env != "production":
            return self
        for name in type(self).model_fields:
            value = getattr(self, name)
            text = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
            if PLACEHOLDER_MARK in text.lower():
                raise ValueError(
                    f"TASKMESH_{name.upper()} contains the placeholder {PLACEHOLDER_MARK!r}; "
                    "set the real value (env=production)"
                )
        problems = {
            "mongo": ("mongo_url", _mongo_url_problem(self.mongo_url)),
            "amqp": ("amqp_url", _amqp_url_problem(self.amqp_url)),
            "redis": ("redis_url", _redis_url_problem(self.redis_url)),
        }
        for server in sorted(self.uses):
            name, problem = problems[server]
            if problem:
                raise ValueError(f"TASKMESH_{name.upper()} {problem} (env=production)")
        for owner, user in sorted(self.event_publisher_users.items()):
            if user == DEFAULT_BROKER_USER:
                raise ValueError(
                    f"TASKMESH_EVENT_PUBLISHER_USERS maps {owner} to the broker's default "
                    f"'guest' user; {owner} publishes as its own user (env=production)"
                )
        return self


def _amqp_url_problem(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.username or not parts.password:
        return "has no credentials; give the service its own broker user and password"
    if parts.username == DEFAULT_BROKER_USER:
        return "uses the broker's default 'guest' user; give the service its own user"
    return None


def _redis_url_problem(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.password or parse_qs(parts.query).get("password", [""])[0]:
        return None
    return "has no password; Redis must require one (requirepass or an ACL user)"


def _mongo_url_problem(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.username and parts.password:
        return None
    mechanism = parse_qs(parts.query).get("authMechanism", [""])[0].upper()
    if mechanism in PASSWORDLESS_MONGO_MECHANISMS:
        return None
    return "has no credentials; give the service its own MongoDB user and password"
