"""How fast the running analytics service applies events, with nothing upstream in the way.

The event pipeline end to end is bounded by its slowest stage. The writes (HTTP through the
gateway) and the relay are measured elsewhere; this publishes ``events`` ``task.created``
events straight to the exchange the services use (publisher confirms, the library's own
``EventPublisher``, up to 256 in flight), for tasks spread over ``owners`` made-up users, and
counts how fast analytics' consumer applies them (its ``events_consumed_total``, outcome
processed): the analytics stage's own ceiling, through the same queue, dedupe and store as
real events. The made-up users' statistics stay in the bench's throwaway database.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from bson import ObjectId
from taskmesh_common.amqp import BrokerConnection
from taskmesh_common.events import EventPublisher

from bench.events import created_entry
from bench.pipeline import processed_count, scrape, wait_for_processed

__all__ = ["analytics_alone"]


async def analytics_alone(
    amqp_url: str, exchange: str, analytics_internal_url: str, *, events: int, owners: int = 16
) -> dict[str, Any]:
    # amqp_url: the tasks service's broker user (analytics takes task events from it alone);
    # analytics_internal_url: its internal listener, where /metrics is.
    people = [str(uuid.uuid4()) for _ in range(owners)]
    entries = [created_entry(str(ObjectId()), people[i % owners]) for i in range(events)]
    broker = BrokerConnection(amqp_url, name="bench-analytics-alone")
    broker.start()
    try:
        publisher = EventPublisher(broker, exchange)
        await publisher.start(timeout=10)
        before = processed_count(await scrape(analytics_internal_url))
        began = time.monotonic()
        await asyncio.gather(*(publisher.publish(entry) for entry in entries))
        published = time.monotonic() - began
        await publisher.close()
        applied, applied_at = await wait_for_processed(
            analytics_internal_url, since=before, expected=events, stall_seconds=20, max_seconds=120
        )
    finally:
        await broker.close()
    seconds = applied_at - began
    return {
        "events": events,
        "published_per_s": round(events / published, 1),
        "applied": applied,
        "seconds": round(seconds, 2),
        "applied_per_s": round(applied / seconds, 1) if seconds > 0 else None,
    }
