"""Generations of the projections, and the `meta` pointer naming the current one.

A rebuild writes a fresh generation (its collections carry a new suffix) and then switches
the pointer, so readers never see a half-built projection and the previous generation stays
whole until every replica has followed the switch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase
from taskmesh_common.mongo import Document

from analytics_service.adapters.facts import BASE_FACTS, FactsTable

__all__ = ["META", "Generation", "GenerationPointer"]

META = "meta"
_POINTER_ID = "projection"


@dataclass(frozen=True)
class Generation:
    """The projections of one build, written and read together."""

    suffix: str
    facts: FactsTable

    @classmethod
    def of(cls, db: AsyncDatabase[Document], suffix: str) -> Generation:
        return cls(suffix, FactsTable(db[BASE_FACTS + suffix]))

    async def create_indexes(self) -> None:
        await self.facts.create_indexes()

    async def drop(self, db: AsyncDatabase[Document]) -> None:
        await db.drop_collection(self.facts.collection.name)


class GenerationPointer:
    """Which generation is current; cached for `cache_seconds` per process.

    The cache keeps one extra read off every event and request; after a rebuild switches
    generations, replicas follow within `cache_seconds` (the rebuild waits longer than that
    before its catch-up pass).
    """

    def __init__(self, db: AsyncDatabase[Document], *, cache_seconds: float = 1.0) -> None:
        self.db = db
        self.meta = db[META]
        self.cache_seconds = cache_seconds
        self._cached: tuple[float, Generation] | None = None

    async def current(self) -> Generation:
        now = time.monotonic()
        if self._cached is not None and now - self._cached[0] < self.cache_seconds:
            return self._cached[1]
        pointer = await self.meta.find_one({"_id": _POINTER_ID})
        generation = Generation.of(self.db, str(pointer["suffix"]) if pointer else "")
        self._cached = (now, generation)
        return generation

    async def switch_to(self, generation: Generation) -> None:
        await self.meta.update_one(
            {"_id": _POINTER_ID},
            {"$set": {"suffix": generation.suffix, "switched_at": datetime.now(UTC)}},
            upsert=True,
        )
        self._cached = None
