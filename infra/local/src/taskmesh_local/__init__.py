"""The no-Docker stack: installs, builds and runs taskmesh's backing servers and services.

Standard library only, so that the system ``python3`` runs it before any venv exists::

    PYTHONPATH=infra/local/src python3 -m taskmesh_local up

Test fixtures import :func:`start_servers` (throwaway MongoDB-protocol, RabbitMQ, Redis and
optionally Jaeger servers on free ports) and :func:`start_services` (the four services as
processes).
"""

from taskmesh_local.config import LocalError, Ports
from taskmesh_local.servers import ServerSet, start_servers, stop_servers
from taskmesh_local.services import SERVICE_NAMES, RunningServices, start_services
from taskmesh_local.stack import Stack

__all__ = [
    "SERVICE_NAMES",
    "LocalError",
    "Ports",
    "RunningServices",
    "ServerSet",
    "Stack",
    "start_servers",
    "start_services",
    "stop_servers",
]
