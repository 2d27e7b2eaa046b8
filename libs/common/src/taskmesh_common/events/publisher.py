"""Publishing envelopes to the events exchange with publisher confirms."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange
from opentelemetry import propagate, trace

from taskmesh_common.amqp import BrokerConnection
from taskmesh_common.events.envelope import envelope_body
from taskmesh_common.events.errors import PublishFailed
from taskmesh_common.events.metrics import (
    EVENTS_PUBLISH_LAG,
    EVENTS_PUBLISHED,
    EVENTS_UNROUTABLE,
)
from taskmesh_common.events.topology import declare_exchange

__all__ = ["EventPublisher", "is_unroutable", "publish_in_order"]

logger = logging.getLogger("taskmesh.events.publisher")
_TRACER_NAME = "taskmesh_common.events"


def _age_seconds(occurred: object) -> float:
    """Seconds since an envelope's ``time`` (ISO 8601 as stored, or a datetime); 0 when it
    is unreadable: the event is out, and a metric must not make it look otherwise."""
    if isinstance(occurred, str):
        try:
            occurred = datetime.fromisoformat(occurred)
        except ValueError:
            return 0.0
    if not isinstance(occurred, datetime):
        return 0.0
    if occurred.tzinfo is None:
        occurred = occurred.replace(tzinfo=UTC)
    return max(0.0, (datetime.now(UTC) - occurred).total_seconds())


def is_unroutable(exc: BaseException) -> bool:
    """The broker returned the message: no queue is bound for its routing key."""
    return isinstance(exc, aio_pika.exceptions.PublishError)


class EventPublisher:
    """Publishes envelope fields (an outbox entry or an envelope dump) as persistent messages.

    Each message's ``user_id`` is the connection's broker user: the broker refuses any
    other, so consumers know which user published it (``ownership``).

    Each message gets a PRODUCER span ``<type> publish``, a child of the trace context
    stored in the entry's ``headers`` (or of the current span), and carries that span's
    ``traceparent`` so the consumer continues the same trace.
    """

    def __init__(
        self,
        broker: BrokerConnection,
        exchange: str,
        *,
        max_in_flight: int = 256,
        confirm_timeout: float = 10.0,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        self.broker = broker
        self.exchange_name = exchange
        self.confirm_timeout = confirm_timeout
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._tracer = trace.get_tracer(_TRACER_NAME, tracer_provider=tracer_provider)
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None

    @property
    def started(self) -> bool:
        return self._exchange is not None

    async def start(self, timeout: float | None = None) -> None:
        """Wait for the broker (up to ``timeout``), declare the exchange, open a confirm channel.

        An :class:`OutboxRelay` calls this itself (with a timeout, retrying); do not await
        it without a timeout in a lifespan, or start-up waits for the broker.
        """
        if self._exchange is not None:
            return
        connection = await self.broker.wait(timeout)
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        try:
            exchange = await declare_exchange(channel, self.exchange_name)
        except BaseException:
            await channel.close()
            raise
        self._channel, self._exchange = channel, exchange

    async def close(self) -> None:
        channel, self._channel, self._exchange = self._channel, None, None
        if channel is not None and not channel.is_closed:
            await channel.close()

    async def publish(self, envelope_fields: Mapping[str, Any]) -> None:
        """Publish one event; returns once the broker confirmed it, raises if it did not."""
        if self._exchange is None:
            raise RuntimeError("EventPublisher.start() was not awaited")
        exchange = self._exchange
        event_type = str(envelope_fields["type"])
        stored = envelope_fields.get("headers") or {}
        parent = propagate.extract(stored) if "traceparent" in stored else None
        async with self._in_flight:
            with self._tracer.start_as_current_span(
                f"{event_type} publish",
                context=parent,
                kind=trace.SpanKind.PRODUCER,
                attributes={
                    "messaging.system": "rabbitmq",
                    "messaging.operation.type": "send",
                    "messaging.destination.name": self.exchange_name,
                    "messaging.rabbitmq.destination.routing_key": event_type,
                    "messaging.message.id": str(envelope_fields["id"]),
                },
            ):
                headers: dict[str, Any] = {}
                propagate.inject(headers)
                if "traceparent" not in headers:
                    # No span here (tracing off): still pass on what the producer recorded.
                    headers = {k: v for k, v in stored.items() if isinstance(v, str)}
                message = aio_pika.Message(
                    body=envelope_body(envelope_fields),
                    content_type="application/json",
                    content_encoding="utf-8",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    message_id=str(envelope_fields["id"]),
                    type=event_type,
                    app_id=str(envelope_fields.get("source", "")) or None,
                    user_id=self.broker.user,
                    headers=headers,
                )
                await exchange.publish(
                    message, routing_key=event_type, mandatory=True, timeout=self.confirm_timeout
                )
        service = str(envelope_fields.get("source", "")).rsplit("/", 1)[-1]
        EVENTS_PUBLISHED.labels(service, event_type).inc()
        EVENTS_PUBLISH_LAG.labels(service).observe(_age_seconds(envelope_fields.get("time")))

    async def publish_each(
        self, entries: Sequence[Mapping[str, Any]]
    ) -> list[BaseException | None]:
        """Publish many with up to ``max_in_flight`` awaiting their confirms at once.

        Returns, per entry, ``None`` when confirmed or the exception that prevented it.
        """

        async def one(entry: Mapping[str, Any]) -> BaseException | None:
            try:
                await self.publish(entry)
            except Exception as exc:
                return exc
            return None

        return list(await asyncio.gather(*(one(e) for e in entries)))

    async def publish_many(self, entries: Sequence[Mapping[str, Any]]) -> None:
        """Publish many concurrently; raises :class:`PublishFailed` if any was not confirmed."""
        results = await self.publish_each(entries)
        failures = {
            str(entry["id"]): exc
            for entry, exc in zip(entries, results, strict=True)
            if exc is not None
        }
        if failures:
            first = next(iter(failures.values()))
            raise PublishFailed(
                f"{len(failures)} of {len(entries)} events not confirmed: {first!r}", failures
            )


async def publish_in_order(
    publisher: EventPublisher,
    entries: Sequence[Mapping[str, Any]],
    *,
    service: str,
    drop_unroutable: bool,
) -> tuple[list[Mapping[str, Any]], BaseException | None]:
    """Publish one document's entries in order, stopping at the first that fails.

    With ``drop_unroutable``, an entry the broker returns as unroutable is counted, logged
    and counted as out. Returns the entries that are out and the failure, if any.
    """
    done: list[Mapping[str, Any]] = []
    for entry in entries:
        try:
            await publisher.publish(entry)
        except Exception as exc:
            if not (drop_unroutable and is_unroutable(exc)):
                return done, exc
            EVENTS_UNROUTABLE.labels(service, str(entry.get("type"))).inc()
            logger.warning(
                "event dropped: no queue is bound for its type",
                extra={"event_id": entry.get("id"), "event_type": entry.get("type")},
            )
        done.append(entry)
    return done, None
