"""Events the tasks service consumes, and the one table that maps them to handlers.

user.deleted: every task of the user goes away. We do *not* emit task.deleted per
task: analytics consumes user.deleted itself and drops the user's statistics, so a
burst of per-task events would only repeat what that one event already says (and a
large account would flood the exchange). Events a task already holds in its outbox
(say a task.created not yet published) are still published: the task becomes a
tombstone that the relay removes once its outbox is empty.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from taskmesh_common.amqp import BrokerConnection
from taskmesh_common.events import Consumer, Envelope, validate_event
from taskmesh_common.events.schemas import UserDeleted

from tasks_service.config import Settings
from tasks_service.service_layer.tasks import Tasks

__all__ = ["USER_EVENTS_QUEUE", "build_consumer", "handlers"]

USER_EVENTS_QUEUE = "tasks.user-events"
EventHandler = Callable[[Envelope], Awaitable[None]]


def handlers(tasks: Tasks, sweep_again_seconds: float = 30.0) -> dict[str, EventHandler]:
    async def remove_deleted_users_tasks(envelope: Envelope) -> None:
        data = validate_event(envelope)
        assert isinstance(data, UserDeleted)
        # Idempotent by itself: a second delivery finds nothing left to remove.
        await tasks.remove_owner(data.user_id)
        tasks.remove_owner_again_later(data.user_id, sweep_again_seconds)

    return {"user.deleted": remove_deleted_users_tasks}


def build_consumer(
    broker: BrokerConnection,
    settings: Settings,
    db: AsyncDatabase[dict[str, Any]],
    tasks: Tasks,
) -> Consumer:
    table = handlers(tasks, settings.owner_sweep_again_seconds)

    async def dispatch(envelope: Envelope) -> None:
        await table[envelope.type](envelope)

    return Consumer(
        broker,
        exchange=settings.events_exchange,
        queue=f"{settings.queue_prefix}{USER_EVENTS_QUEUE}",
        routing_keys=list(table),
        handler=dispatch,
        db=db,
        service=settings.service_name,
        publisher_users=settings.event_publisher_users,
    )
