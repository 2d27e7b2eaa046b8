"""One robust RabbitMQ connection per process, opened in the background.

A service starts even while the broker is away (its /readyz says so) and connects
as soon as the broker answers; aio-pika's robust connection then restores channels
and topology after a reconnect.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import unquote, urlsplit

import aio_pika
from aio_pika.abc import AbstractRobustConnection

__all__ = ["BrokerConnection", "broker_user"]

logger = logging.getLogger("taskmesh.amqp")

# The user aio-pika logs in as when the URL names none.
_DEFAULT_USER = "guest"


def broker_user(url: str) -> str:
    """The broker user a connection to ``url`` authenticates as."""
    return unquote(urlsplit(url).username or "") or _DEFAULT_USER


class BrokerConnection:
    def __init__(self, url: str, *, name: str, max_delay: float = 5.0) -> None:
        self.url = url
        self.name = name
        # The broker refuses a message whose ``user_id`` is not this user, so the property
        # proves to consumers which user published it.
        self.user = broker_user(url)
        self.max_delay = max_delay
        self.connection: AbstractRobustConnection | None = None
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._connect_forever(), name=f"amqp-connect-{self.name}")

    async def _connect_forever(self) -> None:
        delay = 0.2
        while True:
            try:
                self.connection = await aio_pika.connect_robust(
                    self.url, client_properties={"connection_name": self.name}, timeout=5
                )
            except Exception as exc:
                logger.warning("broker unreachable, retrying", extra={"error": str(exc)})
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_delay)
            else:
                self.connected.set()
                return

    async def wait(self, timeout: float | None = None) -> AbstractRobustConnection:
        await asyncio.wait_for(self.connected.wait(), timeout)
        assert self.connection is not None
        return self.connection

    async def check(self) -> None:
        """Readiness: connected now (a robust connection that is reconnecting is not)."""
        if self.connection is None or self.connection.is_closed:
            raise ConnectionError("not connected to RabbitMQ")
        # A robust connection reports open while it is reconnecting; its underlying
        # transport tells the truth.
        transport = getattr(self.connection, "transport", None)
        if transport is None:
            raise ConnectionError("RabbitMQ connection is reconnecting")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        if self.connection is not None:
            await self.connection.close()
