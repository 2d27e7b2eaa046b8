"""The analytics consumer: task events and user deletions, from its own durable queue."""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase
from taskmesh_common.amqp import BrokerConnection
from taskmesh_common.events import Consumer
from taskmesh_common.mongo import Document

from analytics_service.config import Settings
from analytics_service.handlers import ROUTING_KEYS, Projector

__all__ = ["build_consumer"]


def build_consumer(
    settings: Settings, broker: BrokerConnection, db: AsyncDatabase[Document], projector: Projector
) -> Consumer:
    """Competing consumers: every replica takes from the same queue; handlers are idempotent."""
    return Consumer(
        broker,
        exchange=settings.events_exchange,
        queue=f"{settings.queue_prefix}{settings.events_queue}",
        routing_keys=ROUTING_KEYS,
        handler=projector.apply,
        db=db,
        service=settings.service_name,
        prefetch=settings.consumer_prefetch,
    )
