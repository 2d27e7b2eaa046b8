"""The gateway's upstream pool lets go of an idle connection before the service closes it.

Otherwise a request sent just as the service closes meets a reset, and a POST (not retried)
reaches the client as a 503 from a healthy upstream.
"""

from __future__ import annotations

from gateway_service.config import Settings
from taskmesh_common.settings import ServiceSettings


def test_the_pool_lets_go_of_idle_connections_before_services_close_them() -> None:
    assert Settings().upstream_keepalive_seconds < ServiceSettings().keep_alive_seconds
