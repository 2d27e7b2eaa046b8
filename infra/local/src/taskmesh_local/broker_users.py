"""One RabbitMQ user per service, with permissions limited to what the service owns and consumes.

The local broker loads them at boot from a definitions file (``load_definitions``), so no
``rabbitmqctl`` call is needed and a restart puts back exactly these users and passwords.

Names the permissions rely on (infra/README.md):

- the events exchange is ``taskmesh.events``, ``taskmesh.events.<word>`` or a name without
  dots (an isolated test or bench run's ``TASKMESH_EVENTS_EXCHANGE``);
- a service's queues are ``[<prefix>.]<service>.<name>`` with their ``.retry.<n>`` and
  ``.dlq`` queues, where ``<prefix>`` (``TASKMESH_QUEUE_PREFIX`` without its dot) has no dots;
  each consumer's requeue exchange ``<queue>.requeue`` (retries and dead letters go through
  it) is in the same namespace.

No user may write on the default exchange (``amq.default``): it routes by queue name, so
write on it would let a service put a forged event into another service's queue.

Topic permissions (RabbitMQ >= 3.7) restrict the routing keys each user may publish on, and
bind from, the named exchange: auth writes ``user.*`` only, tasks ``task.*`` only, analytics
nothing. They name the exchange itself, not a pattern, so they apply to ``taskmesh.events``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

__all__ = [
    "EVENTS_EXCHANGE",
    "SERVICE_USERS",
    "BrokerGrant",
    "amqp_url",
    "definitions",
    "new_passwords",
    "url_var",
    "without_service_urls",
    "write_definitions",
]

EVENTS_EXCHANGE = "taskmesh.events"
# The broker's default user, kept for operators and test harnesses on 127.0.0.1 only
# (RabbitMQ refuses `guest` from any other address); services never use it.
ADMIN_USER = "guest"

_EXCHANGE = rf"{re.escape(EVENTS_EXCHANGE)}(\.[^.]+)?|[^.]+"
_NOTHING = "^$"


def _own_queues(service: str) -> str:
    return rf"^([^.]+\.)?{re.escape(service)}\."


@dataclass(frozen=True)
class BrokerGrant:
    """A service's permissions on the vhost ``/`` and its topic permissions on the exchange."""

    configure: str
    write: str
    read: str
    topic_write: str
    topic_read: str


def _grants() -> dict[str, BrokerGrant]:
    exchange = f"^({_EXCHANGE})$"
    tasks_q, analytics_q = _own_queues("tasks"), _own_queues("analytics")
    return {
        # Publishes user events; consumes nothing.
        "auth": BrokerGrant(exchange, exchange, _NOTHING, r"^user\.", _NOTHING),
        # Publishes task events; consumes user events in its own queues.
        "tasks": BrokerGrant(
            f"{exchange}|{tasks_q}",
            f"{exchange}|{tasks_q}",
            f"{exchange}|{tasks_q}",
            r"^task\.",
            r"^user\.",
        ),
        # Publishes nothing; consumes task and user events in its own queues.
        "analytics": BrokerGrant(
            f"{exchange}|{analytics_q}",
            analytics_q,
            f"{exchange}|{analytics_q}",
            _NOTHING,
            r"^(task|user)\.",
        ),
    }


GRANTS = _grants()
# The gateway uses no broker.
SERVICE_USERS = tuple(GRANTS)


def url_var(service: str) -> str:
    """The variable holding ``service``'s own AMQP URL in an env file (``TASKMESH_TASKS_AMQP_URL``)."""
    return f"TASKMESH_{service.upper()}_AMQP_URL"


def without_service_urls(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without any service's own AMQP URL: what a process may inherit."""
    drop = {url_var(service) for service in SERVICE_USERS}
    return {key: value for key, value in env.items() if key not in drop}


def amqp_url(user: str, password: str, port: int) -> str:
    return f"amqp://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{port}/"


def new_passwords() -> dict[str, str]:
    return {service: secrets.token_urlsafe(18) for service in SERVICE_USERS}


def _password_hash(password: str) -> str:
    # rabbit_password_hashing_sha256: base64(salt + sha256(salt + password)), 4-byte salt.
    salt = secrets.token_bytes(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def definitions(passwords: Mapping[str, str], exchange: str = EVENTS_EXCHANGE) -> dict[str, object]:
    """RabbitMQ definitions: the service users of ``passwords`` and ``guest``/``guest``."""
    users: list[dict[str, object]] = [
        {
            "name": ADMIN_USER,
            "password_hash": _password_hash(ADMIN_USER),
            "hashing_algorithm": "rabbit_password_hashing_sha256",
            "tags": "administrator",
        }
    ]
    permissions = [
        {"user": ADMIN_USER, "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}
    ]
    topic_permissions = []
    for service, password in sorted(passwords.items()):
        grant = GRANTS[service]
        users.append(
            {
                "name": service,
                "password_hash": _password_hash(password),
                "hashing_algorithm": "rabbit_password_hashing_sha256",
                "tags": "",
            }
        )
        permissions.append(
            {
                "user": service,
                "vhost": "/",
                "configure": grant.configure,
                "write": grant.write,
                "read": grant.read,
            }
        )
        topic_permissions.append(
            {
                "user": service,
                "vhost": "/",
                "exchange": exchange,
                "write": grant.topic_write,
                "read": grant.topic_read,
            }
        )
    return {
        "users": users,
        "vhosts": [{"name": "/"}],
        "permissions": permissions,
        "topic_permissions": topic_permissions,
    }


def write_definitions(path: Path, passwords: Mapping[str, str], exchange: str) -> None:
    """Write the definitions file, readable by its owner only (it holds password hashes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(json.dumps(definitions(passwords, exchange), indent=2) + "\n")
