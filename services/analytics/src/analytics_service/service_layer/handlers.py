"""Applying events to the projections: one table maps each event type to its handler.

Every handler is idempotent and order-tolerant by construction (version-guarded facts,
tombstones, deleted-user markers), so the same handlers serve live consumption, redelivery,
competing replicas and the rebuild's replay.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from taskmesh_common.batching import GroupCommit
from taskmesh_common.events import Envelope, validate_event
from taskmesh_common.events.schemas import TaskDeleted, TaskState, UserDeleted

from analytics_service.adapters.cache import SummaryCache
from analytics_service.adapters.generations import Generation
from analytics_service.adapters.store import ProjectionStore
from analytics_service.domain.model import (
    TaskFact,
    TaskRemoval,
    TaskSnapshot,
    fact_from_removal,
    fact_from_snapshot,
    newest_facts,
)

__all__ = ["HANDLERS", "ROUTING_KEYS", "Projector", "snapshot_of"]

logger = logging.getLogger("analytics.handlers")

# The one group-commit key: events of every user go in the same batches.
_ALL = "all"

# `task.*` matches exactly one word after `task.`, which is every task event type.
ROUTING_KEYS = ("task.*", "user.deleted")


def snapshot_of(data: TaskState) -> TaskSnapshot:
    return TaskSnapshot(
        task_id=data.task_id,
        owner_id=data.owner_id,
        version=data.version,
        status=data.status,
        priority=data.priority,
        due_date=data.due_date,
        created_at=data.created_at,
        updated_at=data.updated_at,
        completed_at=data.completed_at,
    )


@dataclass
class Projector:
    """Applies envelopes to `generation` (given for a rebuild, else the current one).

    `record=False` replays without storing events again (the rebuild reads them from the
    store); `cache` is invalidated for the user whose numbers changed.
    """

    store: ProjectionStore
    cache: SummaryCache | None = None
    generation: Generation | None = None
    record: bool = True
    _batches: GroupCommit[str, tuple[Envelope, TaskFact], None] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Group commit: the consumer runs the handlers of the messages it prefetched
        # concurrently, so the events in flight together, of any users, are written
        # together. Every write is per task and version-guarded, so one batch of many
        # users' events is as exact as one batch per user, in fewer round trips.
        self._batches = GroupCommit(self._write_batch)

    async def _generation(self) -> Generation:
        return self.generation if self.generation is not None else await self.store.current()

    async def apply(self, envelope: Envelope) -> None:
        handler = HANDLERS.get(envelope.type)
        if handler is None:
            # user.registered and friends change no statistic: acknowledged and dropped.
            return
        await handler(self, envelope)

    async def apply_stored(self, stored: Mapping[str, Any]) -> None:
        await self.apply(Envelope.model_validate(stored))

    async def put_fact(self, envelope: Envelope, fact: TaskFact) -> None:
        """Returns once this event is written, with the other events of its user in flight."""
        await self._batches.submit(_ALL, (envelope, fact))

    async def _write_batch(self, _: str, batch: list[tuple[Envelope, TaskFact]]) -> list[None]:
        """Three round trips per batch of events: the facts (one guarded bulk write), the
        events (one insert), the deleted-user check of their users (one read)."""
        generation = await self._generation()
        await generation.facts.put_newest(newest_facts(fact for _, fact in batch))
        if self.record:
            owned = [(fact.owner_id, envelope.model_dump(mode="json")) for envelope, fact in batch]
            await self.store.events.record(owned)
        owners = list(dict.fromkeys(fact.owner_id for _, fact in batch))
        # Checked after the writes: `forget_user` marks the user before it deletes, so a
        # batch that wrote after the deletion sees the mark here and takes back what it wrote
        # (a late event of a deleted user must not bring their statistics back).
        for owner_id in await self.store.deleted_users.among(owners):
            await generation.facts.forget_owner(owner_id)
            await self.store.events.forget_owner(owner_id)
        if self.cache is not None:
            # Even when nothing changed: a redelivery may follow a crash that came between
            # the write and the invalidation.
            await self.cache.invalidate(*owners)
        return [None] * len(batch)


async def record_task_state(projector: Projector, envelope: Envelope) -> None:
    data = validate_event(envelope)
    assert isinstance(data, TaskState)
    await projector.put_fact(envelope, fact_from_snapshot(snapshot_of(data)))


async def record_task_deleted(projector: Projector, envelope: Envelope) -> None:
    data = validate_event(envelope)
    assert isinstance(data, TaskDeleted)
    removal = TaskRemoval(data.task_id, data.owner_id, data.version, data.deleted_at)
    await projector.put_fact(envelope, fact_from_removal(removal))


async def forget_user(projector: Projector, envelope: Envelope) -> None:
    data = validate_event(envelope)
    assert isinstance(data, UserDeleted)
    store = projector.store
    # The mark first: every batch of this user that writes after the deletion below sees it.
    await store.deleted_users.mark(data.user_id, data.deleted_at)
    generation = await projector._generation()
    await generation.facts.forget_owner(data.user_id)
    if projector.record:
        # The user.deleted event itself is kept (it holds no personal data) so a rebuild
        # knows the user is gone; every other event of the user goes.
        await store.events.record([(data.user_id, envelope.model_dump(mode="json"))])
        await store.events.forget_owner(data.user_id)
    if projector.cache is not None:
        await projector.cache.invalidate(data.user_id)
    logger.info("forgot a deleted user's statistics", extra={"user_id": data.user_id})


Handler = Callable[[Projector, Envelope], Awaitable[None]]

HANDLERS: dict[str, Handler] = {
    "task.created": record_task_state,
    "task.updated": record_task_state,
    "task.completed": record_task_state,
    "task.reopened": record_task_state,
    "task.deleted": record_task_deleted,
    "user.deleted": forget_user,
}
