"""Expiring, exclusive leases built only on unique inserts.

FerretDB 1.24 on SQLite applies ``update``/``findAndModify`` as read-then-replace outside
a transaction (FerretDB issue #3040): conditional updates are not atomic there, and two
relays could both "win" a ``find_one_and_update`` claim (measured: 311 wins for 200
documents). An insert with a duplicate ``_id`` is refused atomically on FerretDB and
MongoDB alike, so a lease here is a *generation* document ``<key>|<gen>``: whoever inserts
generation ``g + 1`` after seeing generation ``g`` released or expired holds the key.

Only the holder writes its own generation document (to release it), and the winner of a
generation deletes generations two behind, so the collection stays a few documents per key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

__all__ = ["Leases"]

logger = logging.getLogger("taskmesh.events.leases")


def _lease_id(key: str, gen: int) -> str:
    return f"{key}|{gen:012d}"


class Leases:
    def __init__(
        self, collection: AsyncCollection[dict[str, Any]], *, owner: str, duration: timedelta
    ) -> None:
        self.collection = collection
        self.owner = owner
        self.duration = duration

    async def acquire(self, keys: Iterable[str]) -> dict[str, int]:
        """Try to take each key; returns the keys now held, with their generation."""
        wanted = sorted(set(keys))
        if not wanted:
            return {}
        latest: dict[str, dict[str, Any]] = {}
        async for doc in self.collection.find({"key": {"$in": wanted}}):
            current = latest.get(doc["key"])
            if current is None or doc["gen"] > current["gen"]:
                latest[doc["key"]] = doc
        now = datetime.now(UTC)
        attempts: dict[str, int] = {}
        for key in wanted:
            last = latest.get(key)
            if last is not None and not last.get("released") and last["expires_at"] > now:
                continue  # held by someone (maybe a relay that died: it expires)
            attempts[key] = (last["gen"] if last else 0) + 1
        results = await asyncio.gather(*(self._take(k, g, now) for k, g in attempts.items()))
        return {key: gen for (key, gen), won in zip(attempts.items(), results, strict=True) if won}

    async def _take(self, key: str, gen: int, now: datetime) -> bool:
        try:
            await self.collection.insert_one(
                {
                    "_id": _lease_id(key, gen),
                    "key": key,
                    "gen": gen,
                    "owner": self.owner,
                    "expires_at": now + self.duration,
                    "released": False,
                }
            )
        except DuplicateKeyError:
            return False
        if gen > 2:
            # Nobody writes a generation that old any more: its successor exists.
            await self.collection.delete_many(
                {"_id": {"$in": [_lease_id(key, g) for g in range(max(1, gen - 4), gen - 1)]}}
            )
        return True

    async def release(self, held: dict[str, int]) -> None:
        """Give keys back at once (otherwise they expire after ``duration``)."""
        now = datetime.now(UTC)
        await asyncio.gather(
            *(
                self.collection.update_one(
                    {"_id": _lease_id(key, gen), "owner": self.owner},
                    {"$set": {"released": True, "expires_at": now}},
                )
                for key, gen in held.items()
            )
        )
