"""Applying events to the projections: one table maps each event type to its handler.

Every handler is idempotent and order-tolerant by construction (version-guarded facts,
tombstones, deleted-user markers), so the same handlers serve live consumption, redelivery
and the rebuild's replay.
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
from analytics_service.adapters.store import Generation, ProjectionStore
from analytics_service.domain.model import (
    TaskRemoval,
    TaskSnapshot,
    entry_key,
    fact_from_removal,
    fact_from_snapshot,
)

__all__ = ["HANDLERS", "ROUTING_KEYS", "Projector"]

logger = logging.getLogger("analytics.handlers")

# `task.*` matches exactly one word after `task.`, which is every task event type.
ROUTING_KEYS = ("task.*", "user.deleted")


def _snapshot(data: TaskState) -> TaskSnapshot:
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
    """Applies envelopes to `generation` (given for a rebuild, else the live one).

    `record=False` replays without storing events again (the rebuild reads them from the
    store); `cache` is invalidated for the user whose numbers changed.
    """

    store: ProjectionStore
    cache: SummaryCache | None = None
    generation: Generation | None = None
    record: bool = True
    _batches: GroupCommit[str, tuple[Envelope, dict[str, Any]], None] = field(
        init=False, repr=False
    )

    def __post_init__(self) -> None:
        # Group commit per user: the consumer runs the handlers of the messages it
        # prefetched concurrently, so events of one user are often in flight together.
        self._batches = GroupCommit(self._put_facts)

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

    async def _put_fact(self, envelope: Envelope, owner_id: str, fact: dict[str, Any]) -> None:
        # Joins the events of this user in flight now; returns once this one is written.
        await self._batches.submit(owner_id, (envelope, fact))

    async def _put_facts(
        self, owner_id: str, batch: list[tuple[Envelope, dict[str, Any]]]
    ) -> list[None]:
        """Write a batch of one user's task events under the user's lock.

        Round trips per batch: lock, deleted-user check, those of `Generation.put_facts`
        (three for a batch of new tasks), the events in one insert, unlock.
        """
        # Under the user's lock: FerretDB's conditional writes are only safe when nobody
        # else writes this user's documents at the same time (see `taskmesh_common.locks`),
        # which also makes the versions read here the ones the writes below replace.
        async with self.store.locks.holding(owner_id):
            if await self.store.is_user_deleted(owner_id):
                # A late event of a deleted account must not bring its statistics back.
                return [None] * len(batch)
            generation = await self._generation()
            newest: dict[str, dict[str, Any]] = {}
            for _, fact in batch:
                key = entry_key(str(fact["_id"]))
                if key not in newest or fact["version"] > newest[key]["version"]:
                    newest[key] = fact
            await generation.put_facts(owner_id, newest)
            if self.record:
                envelopes = [envelope.model_dump(mode="json") for envelope, _ in batch]
                await self.store.record_events(envelopes, owner_id)
        if self.cache is not None:
            # Even when nothing changed: a redelivery may follow a crash that came between
            # the write and the invalidation.
            await self.cache.invalidate(owner_id)
        return [None] * len(batch)


async def record_task_state(projector: Projector, envelope: Envelope) -> None:
    data = validate_event(envelope)
    assert isinstance(data, TaskState)
    await projector._put_fact(envelope, data.owner_id, fact_from_snapshot(_snapshot(data)))


async def record_task_deleted(projector: Projector, envelope: Envelope) -> None:
    data = validate_event(envelope)
    assert isinstance(data, TaskDeleted)
    removal = TaskRemoval(data.task_id, data.owner_id, data.version, data.deleted_at)
    await projector._put_fact(envelope, data.owner_id, fact_from_removal(removal))


async def forget_user(projector: Projector, envelope: Envelope) -> None:
    data = validate_event(envelope)
    assert isinstance(data, UserDeleted)
    async with projector.store.locks.holding(data.user_id):
        # The marker first, so later task events of this user are dropped.
        await projector.store.mark_user_deleted(data.user_id, data.deleted_at)
        generation = await projector._generation()
        await generation.facts.forget_owner(data.user_id)
        await generation.stats.forget_owner(data.user_id)
        if projector.record:
            # The user.deleted event itself is kept (it holds no personal data) so a rebuild
            # knows the user is gone; everything else about the user goes.
            await projector.store.record_event(envelope.model_dump(mode="json"), data.user_id)
            await projector.store.forget_owner_events(data.user_id, keep=envelope.id)
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
