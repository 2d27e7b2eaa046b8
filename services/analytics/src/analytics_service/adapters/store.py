"""The analytics database: its collections, each behind its own module.

- `events` (`adapters.events`): every applied event, the source a rebuild replays;
- `task_facts<suffix>` (`adapters.facts`): one version-guarded fact per task, the read model;
- `deleted_users` (`adapters.deleted_users`): users whose late events are dropped;
- `meta` (`adapters.generations`): which generation of the facts is current.
"""

from __future__ import annotations

from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from taskmesh_common.mongo import Document

from analytics_service.adapters.deleted_users import DELETED_USERS, DeletedUsers
from analytics_service.adapters.events import EVENT_INDEXES, EVENTS, EventStore
from analytics_service.adapters.facts import BASE_FACTS, FACT_INDEXES, RETIRED_FACT_INDEXES
from analytics_service.adapters.generations import Generation, GenerationPointer

__all__ = ["ProjectionStore"]


class ProjectionStore:
    """The collections of one analytics database, opened together."""

    def __init__(self, db: AsyncDatabase[Document], *, pointer_cache_seconds: float = 1.0) -> None:
        self.db = db
        self.events = EventStore(db[EVENTS])
        self.deleted_users = DeletedUsers(db[DELETED_USERS])
        self.pointer = GenerationPointer(db, cache_seconds=pointer_cache_seconds)

    async def current(self) -> Generation:
        return await self.pointer.current()

    def indexes(self) -> dict[str, list[IndexModel]]:
        """Indexes for `ensure_indexes_forever` at start-up (the base facts generation too)."""
        return {EVENTS: EVENT_INDEXES, BASE_FACTS: FACT_INDEXES}

    def retired_indexes(self) -> dict[str, tuple[str, ...]]:
        """Indexes to drop at start-up where found (a later rebuild's generation is made
        without them)."""
        return {BASE_FACTS: RETIRED_FACT_INDEXES}
