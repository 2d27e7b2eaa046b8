"""Expiring, exclusive leases built only on unique inserts.

FerretDB 1.24 on SQLite applies ``update``/``findAndModify`` as read-then-replace outside
a transaction (FerretDB issue #3040): conditional updates are not atomic there, and two
relays could both "win" a ``find_one_and_update`` claim (measured: 311 wins for 200
documents). An insert with a duplicate ``_id`` is refused atomically on FerretDB and
MongoDB alike, so a lease here is a *generation* document ``<key>|<gen>``: whoever inserts
generation ``g + 1`` after seeing generation ``g`` released or expired holds the key.

``sole_since`` tells, per key, since when this owner alone has held it: a taker that
finds its own generation as the latest knows nobody else held the key in between.

Releasing inserts generation ``g + 1`` as a released marker (it fails harmlessly if the
lease expired and someone took ``g + 1`` already); the next taker then inserts ``g + 2``.
Taking and releasing are one ``insert_many(ordered=False)`` for all keys of a batch (a
refused duplicate is reported per document), ~0.08 ms a key on FerretDB, where an update
costs ~10 ms. The winner of a generation deletes generations four and more behind (one
bulk write of deletes by ``_id``), so the collection stays a few documents per key. Only a
key's latest generation counts: a lease is held while it is neither released nor expired.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from taskmesh_common.mongo import delete_by_ids, insert_new

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
        # Per key: since when no other owner has held it (every generation since is ours).
        self.sole_since: dict[str, datetime] = {}

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
        won = await self._insert(
            [self._generation(k, g, now, released=False) for k, g in attempts.items()]
        )
        held = {key: gen for key, gen in attempts.items() if _lease_id(key, gen) in won}
        for key in held:
            # The latest generation before ours was ours too: nobody held the key between
            # (generations are consecutive). Anything else: from now on.
            last = latest.get(key)
            if last is None or last.get("owner") != self.owner or key not in self.sole_since:
                self.sole_since[key] = now
        # Generations four behind are long over (two take-and-release cycles of this key):
        # nobody still holds, nor reads as the latest, one that old.
        stale = [
            _lease_id(k, g) for k, gen in held.items() for g in range(max(1, gen - 8), gen - 3)
        ]
        await delete_by_ids(self.collection, stale)
        return held

    def _generation(self, key: str, gen: int, now: datetime, *, released: bool) -> dict[str, Any]:
        return {
            "_id": _lease_id(key, gen),
            "key": key,
            "gen": gen,
            "owner": self.owner,
            "expires_at": now if released else now + self.duration,
            "released": released,
        }

    async def _insert(self, docs: list[dict[str, Any]]) -> set[str]:
        """Insert what is free; returns the ids inserted (a duplicate is someone else's)."""
        refused = await insert_new(self.collection, docs)
        return {d["_id"] for n, d in enumerate(docs) if n not in refused}

    async def release(self, held: dict[str, int]) -> None:
        """Give keys back at once (otherwise they expire after ``duration``)."""
        now = datetime.now(UTC)
        await self._insert(
            [self._generation(k, g + 1, now, released=True) for k, g in held.items()]
        )
