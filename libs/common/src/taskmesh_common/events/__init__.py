"""Domain events: envelope and schemas, outbox relay, publisher and consumer.

Producers put :func:`outbox_entry` results in the aggregate document's ``_outbox`` in
the same write as the change; an :class:`OutboxRelay` per replica publishes them with
publisher confirms; each consuming service runs a :class:`Consumer` on its own quorum
queue with dedupe, retries with back-off and a dead-letter queue.

Producer (the event goes in the same write as the change)::

    entry = outbox_entry("task.completed", task_id, data, source="taskmesh/tasks")
    await tasks.update_one(
        {"_id": task_id, "version": v}, {"$set": changes, "$push": {OUTBOX_FIELD: entry}}
    )
    relay.wrote("tasks", task_id)

Wiring in a lifespan (neither call blocks while the broker is away)::

    relay = OutboxRelay(db, ["tasks"], EventPublisher(broker, settings.events_exchange),
                        service="tasks")
    relay.start()                      # starts its publisher itself, once the broker answers
    consumer = Consumer(broker, exchange=settings.events_exchange,
                        queue=f"{settings.queue_prefix}tasks.user-events",
                        routing_keys=["user.deleted"], handler=handle, db=db, service="tasks",
                        publisher_users=settings.event_publisher_users)
    await consumer.start()             # returns once consuming, or after 10 s at most
    ...
    await consumer.stop(); await relay.stop(); await relay.publisher.close()
"""

from taskmesh_common.events import schemas
from taskmesh_common.events.consumer import Consumer, Handler
from taskmesh_common.events.envelope import (
    DELETED_FIELD,
    OUTBOX_FIELD,
    Envelope,
    outbox_entry,
    trace_headers,
)
from taskmesh_common.events.errors import (
    EventError,
    InvalidEvent,
    PublishFailed,
    UnknownEventType,
)
from taskmesh_common.events.outbox import OutboxRelay
from taskmesh_common.events.publisher import EventPublisher
from taskmesh_common.events.schemas import EVENT_DATA_MODELS, validate_event
from taskmesh_common.events.topology import ConsumerTopology, declare_exchange

__all__ = [
    "DELETED_FIELD",
    "EVENT_DATA_MODELS",
    "OUTBOX_FIELD",
    "Consumer",
    "ConsumerTopology",
    "Envelope",
    "EventError",
    "EventPublisher",
    "Handler",
    "InvalidEvent",
    "OutboxRelay",
    "PublishFailed",
    "UnknownEventType",
    "declare_exchange",
    "outbox_entry",
    "schemas",
    "trace_headers",
    "validate_event",
]
