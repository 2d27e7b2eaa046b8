"""The analytics consumer: task events and user deletions, from its own durable queue."""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase
from taskmesh_common.amqp import BrokerConnection
from taskmesh_common.events import Consumer
from taskmesh_common.mongo import Document

from analytics_service.config import Settings
from analytics_service.service_layer.handlers import ROUTING_KEYS, Projector

__all__ = ["build_consumer"]


def build_consumer(
    settings: Settings, broker: BrokerConnection, db: AsyncDatabase[Document], projector: Projector
) -> Consumer:
    """Competing consumers: every replica takes from the same queue.

    No separate dedupe (``dedupe=False``, so no processed-event records to keep or expire):
    the projector is idempotent by itself. It writes a task's fact only when the event's
    version is newer than the stored one, keeps events by their id (a second insert is
    refused), and drops late events of a deleted user; a second delivery changes nothing,
    and a dedupe lookup would only add a round trip per event.
    """
    return Consumer(
        broker,
        exchange=settings.events_exchange,
        queue=f"{settings.queue_prefix}{settings.events_queue}",
        routing_keys=ROUTING_KEYS,
        handler=projector.apply,
        db=db,
        service=settings.service_name,
        prefetch=settings.consumer_prefetch,
        dedupe=False,
        publisher_users=settings.event_publisher_users,
    )
