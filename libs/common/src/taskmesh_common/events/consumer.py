"""A service's consumer: its own quorum queue, dedupe, retries with back-off, a dead-letter queue.

For each message: an invalid envelope (or data that breaks its schema) is poison and goes
straight to ``<queue>.dlq``, and so does an event whose ``source`` is not the service that
owns its type (``EVENT_OWNERS``; a forgery, counted in ``events_foreign_source_total``), or
whose publisher, the broker user the broker vouches for in ``user_id``, is not that
service's (``ownership``; counted in ``events_foreign_publisher_total``); an event id
already applied is acknowledged and skipped; otherwise the handler runs, the id is
recorded, and only then is the message acked. A failing handler sends the message to the
next retry queue (it comes back after that queue's delay); after ``max_attempts`` it goes
to the dead-letter queue with the error. Both moves go through the consumer's own requeue
exchange (``requeue``); queues found with other arguments are migrated at start
(``migration``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage, AbstractQueue
from opentelemetry import propagate, trace
from pydantic import ValidationError
from pymongo.asynchronous.database import AsyncDatabase

from taskmesh_common.amqp import BrokerConnection
from taskmesh_common.events.dedupe import DEFAULT_RETENTION, ProcessedEvents
from taskmesh_common.events.envelope import Envelope
from taskmesh_common.events.errors import EventError, ForeignPublisher, ForeignSource
from taskmesh_common.events.metrics import (
    EVENTS_CONSUME_LAG,
    EVENTS_CONSUMED,
    EVENTS_FOREIGN_PUBLISHER,
    EVENTS_FOREIGN_SOURCE,
)
from taskmesh_common.events.migration import migrate_old_layout
from taskmesh_common.events.ownership import check_publisher, message_publisher
from taskmesh_common.events.requeue import Requeue
from taskmesh_common.events.schemas import check_source, validate_event
from taskmesh_common.events.topology import (
    ATTEMPT_HEADER,
    ConsumerTopology,
    declare_exchange,
)
from taskmesh_common.telemetry import quiet_unless_sampled

__all__ = ["Consumer", "Handler"]

logger = logging.getLogger("taskmesh.events.consumer")
Handler = Callable[[Envelope], Awaitable[None]]


def _text_headers(headers: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in headers.items():
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(value, str):
            out[key] = value
    return out


class Consumer:
    """Consumes ``routing_keys`` from ``exchange`` into the quorum queue ``queue``.

    ``queue`` is the full name (the caller adds its ``queue_prefix``). ``await start()``
    returns once consuming (or after ``start_timeout`` while the broker is away; it keeps
    trying in the background). Applied event ids live in ``db[processed_collection]``.

    ``dedupe=False`` is for a handler that is idempotent by itself (its writes guarded by
    the aggregate's version, say): a second delivery reaches it again and changes nothing,
    so the consumer neither looks the id up before (a round trip per message) nor records
    it after.

    ``publisher_users`` maps an owning service to the broker user its events must come
    from, when that is not the user named after it (``TASKMESH_EVENT_PUBLISHER_USERS``).
    """

    def __init__(
        self,
        broker: BrokerConnection,
        *,
        exchange: str,
        queue: str,
        routing_keys: Sequence[str],
        handler: Handler,
        db: AsyncDatabase[dict[str, Any]],
        service: str,
        max_attempts: int = 5,
        retry_delays_ms: Sequence[int] = (500, 2000, 10000),
        prefetch: int = 64,
        delivery_limit: int = 20,
        processed_collection: str = "processed_events",
        dedupe_retention: timedelta = DEFAULT_RETENTION,
        tracer_provider: trace.TracerProvider | None = None,
        dedupe: bool = True,
        publisher_users: Mapping[str, str] | None = None,
    ) -> None:
        if max_attempts < 1 or not retry_delays_ms:
            raise ValueError("max_attempts must be >= 1 and retry_delays_ms not empty")
        self.broker = broker
        self.exchange_name = exchange
        self.routing_keys = list(routing_keys)
        self.handler = handler
        self.service = service
        self.publisher_users = dict(publisher_users or {})
        self.max_attempts = max_attempts
        self.prefetch = prefetch
        self.topology = ConsumerTopology(queue, tuple(retry_delays_ms), delivery_limit)
        self.processed = (
            ProcessedEvents(db[processed_collection], dedupe_retention) if dedupe else None
        )
        self.ready = asyncio.Event()
        self._tracer = trace.get_tracer("taskmesh_common.events", tracer_provider=tracer_provider)
        self._setup_task: asyncio.Task[None] | None = None
        self._channel: AbstractChannel | None = None
        self._publish_channel: AbstractChannel | None = None
        self._requeue: Requeue | None = None
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def queue(self) -> str:
        return self.topology.queue

    async def start(self, start_timeout: float = 10.0) -> None:
        if self._setup_task is None:
            self._setup_task = asyncio.create_task(
                self._setup_forever(), name=f"consumer-{self.queue}"
            )
        try:
            await asyncio.wait_for(self.ready.wait(), start_timeout)
        except TimeoutError:
            logger.warning("consumer not ready yet; still trying", extra={"queue": self.queue})

    async def stop(self, drain_timeout: float = 10.0) -> None:
        """Stop taking messages, let those in progress finish, close the channels."""
        task, self._setup_task = self._setup_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._queue is not None and self._consumer_tag is not None:
            with contextlib.suppress(Exception):
                await self._queue.cancel(self._consumer_tag)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), drain_timeout)
        for channel in (self._channel, self._publish_channel):
            if channel is not None and not channel.is_closed:
                with contextlib.suppress(Exception):
                    await channel.close()
        self._channel = self._publish_channel = self._queue = self._requeue = None
        self.ready.clear()

    async def _setup_forever(self) -> None:
        delay = 0.2
        while True:
            try:
                await self._setup()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning(
                    "consumer set-up failed, retrying",
                    extra={"queue": self.queue, "error": f"{type(exc).__name__}: {exc}"},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            else:
                self.ready.set()
                return

    async def _setup(self) -> None:
        connection = await self.broker.wait()
        if self.processed is not None:
            try:
                await self.processed.ensure_indexes()  # the TTL index that expires old ids
            except Exception as exc:
                # Never blocks consuming: ids are only kept longer, until the next start.
                logger.warning(
                    "dedupe TTL index not created", extra={"queue": self.queue, "error": str(exc)}
                )
        await migrate_old_layout(
            self.broker.url, self.topology, self.exchange_name, self.routing_keys
        )
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=self.prefetch)
        publish_channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange: AbstractExchange = await declare_exchange(channel, self.exchange_name)
        queue = await self.topology.declare(channel, exchange, self.routing_keys)
        self._requeue = Requeue(
            await self.topology.declare_requeue_exchange(publish_channel),
            self.topology,
            self.broker.user,
            self.service,
        )
        self._channel, self._publish_channel, self._queue = channel, publish_channel, queue
        self._consumer_tag = await queue.consume(self._on_message, no_ack=False)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self._in_flight += 1
        self._idle.clear()
        try:
            await self._handle(message)
        except Exception:
            # Could not even move it aside (broker trouble): let the broker redeliver it;
            # the queue's delivery limit bounds how often.
            logger.exception("could not settle message", extra={"queue": self.queue})
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        requeue = self._requeue
        if requeue is None:
            raise RuntimeError("consumer is not started")
        headers = _text_headers(message.headers or {})
        try:
            envelope = Envelope.model_validate_json(message.body)
            validate_event(envelope)
        except (ValidationError, EventError) as exc:
            await requeue.dead_letter(message, "invalid-event", exc)
            return
        try:
            check_source(envelope)
            publisher = message_publisher(message, *requeue.own)
            check_publisher(envelope.type, publisher, self.publisher_users)
        except (ForeignSource, ForeignPublisher) as exc:
            source = isinstance(exc, ForeignSource)
            counter = EVENTS_FOREIGN_SOURCE if source else EVENTS_FOREIGN_PUBLISHER
            counter.labels(self.service, self.queue, envelope.type).inc()
            await requeue.dead_letter(
                message, "foreign-source" if source else "foreign-publisher", exc
            )
            return
        EVENTS_CONSUME_LAG.labels(self.service, self.queue).observe(
            max(0.0, (datetime.now(UTC) - envelope.time).total_seconds())
        )
        attempt = _attempt(message.headers or {})
        with (
            self._tracer.start_as_current_span(
                f"{envelope.type} process",
                context=propagate.extract(headers),
                kind=trace.SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "rabbitmq",
                    "messaging.operation.type": "process",
                    "messaging.destination.name": self.queue,
                    "messaging.message.id": envelope.id,
                    "messaging.rabbitmq.destination.routing_key": envelope.type,
                    "taskmesh.attempt": attempt,
                },
            ) as span,
            quiet_unless_sampled(),
        ):
            try:
                processed = self.processed
                if processed is not None and await processed.seen(envelope.id):
                    await message.ack()
                    EVENTS_CONSUMED.labels(self.service, self.queue, "duplicate").inc()
                    return
                await self.handler(envelope)
                if processed is not None:
                    await processed.record(envelope.id, event_type=envelope.type, queue=self.queue)
            except Exception as exc:
                span.record_exception(exc)
                span.set_status(trace.StatusCode.ERROR, type(exc).__name__)
                if attempt >= self.max_attempts:
                    await requeue.dead_letter(message, "max-attempts", exc, attempt=attempt)
                else:
                    await requeue.retry(message, envelope, attempt, exc)
                return
        await message.ack()
        EVENTS_CONSUMED.labels(self.service, self.queue, "processed").inc()


def _attempt(headers: Mapping[str, Any]) -> int:
    value = headers.get(ATTEMPT_HEADER, 1)
    try:
        return max(1, int(value))
    except (TypeError, ValueError):
        return 1
