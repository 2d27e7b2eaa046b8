"""What one relay cycle publishes: up to ``batch_size`` documents, picked and read.

In order: the documents this process wrote (:class:`~.named.Named` ``own``, not in flight
in another cycle), read as they are; then, under a new claim (:mod:`.claims`), those named
for a claim and, when a scan is due, unclaimed ones the pending scan finds (:mod:`.pending`).
One cycle picks at a time: two would scan up the same documents.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from taskmesh_common.events.outbox.claims import Claimed, claim, read_unclaimed, unclaimed
from taskmesh_common.events.outbox.named import Named
from taskmesh_common.events.outbox.pending import Document, find_pending

__all__ = ["Batch", "Picker"]

Timed = Callable[[str], contextlib.AbstractContextManager[None]]


@dataclass
class Batch:
    """What one cycle publishes: documents with their collection's name, read without a
    claim (``own``: this process wrote them) or under the claim ``token``."""

    token: str
    own: list[tuple[str, Claimed]]
    claimed: list[tuple[str, Claimed]]

    @property
    def documents(self) -> list[tuple[str, Claimed]]:
        return self.own + self.claimed


class Picker:
    """Picks and reads each cycle's :class:`Batch` from ``named`` and the pending scan.

    A scan runs on the first cycle, after :meth:`scan_soon` (a kick naming nothing), while
    scans keep finding a full batch, and, with ``periodic_scans``, every ``scan_interval``.
    ``timed(step)`` measures a step (``read``, ``claim``, ``scan``).
    """

    def __init__(
        self,
        db: AsyncDatabase[Document],
        collections: Sequence[str],
        named: Named,
        *,
        owner: str,
        batch_size: int,
        lease: timedelta,
        scan_interval: float,
        timed: Timed,
    ) -> None:
        self.db = db
        self.collections = list(collections)
        self.named = named
        self.owner = owner
        self.batch_size = batch_size
        self.lease = lease
        self.scan_interval = scan_interval
        self.timed = timed
        self._tokens = itertools.count(1)
        self._scanned_at = float("-inf")
        self._scan_now = True
        self._picking = asyncio.Lock()

    def scan_soon(self) -> None:
        self._scan_now = True

    async def take(self, *, periodic_scans: bool) -> Batch:
        batch = Batch(f"{self.owner}:{next(self._tokens)}", [], [])
        async with self._picking:
            own = self.named.take_own(self.batch_size)
            try:
                room = self.batch_size - sum(map(len, own.values()))
                picked = await self._to_claim(room, periodic_scans)
                await self._read_own(batch, own)
                await self._claim(batch, picked)
            except BaseException:
                # Nothing of this batch is published: its own documents wait for a cycle.
                self.named.give_back(own)
                raise
        return batch

    async def _to_claim(self, room: int, periodic_scans: bool) -> dict[str, list[Any]]:
        picked = self.named.take_to_claim(room)
        room -= sum(map(len, picked.values()))
        now = asyncio.get_running_loop().time()
        periodic = periodic_scans and now - self._scanned_at >= self.scan_interval
        if room > 0 and (self._scan_now or periodic):
            self._scanned_at, self._scan_now = now, False
            for name in self.collections:
                if room <= 0:
                    break
                with self.timed("scan"):
                    found = await find_pending(
                        self.db[name], limit=room, also=unclaimed(datetime.now(UTC))
                    )
                if len(found) >= room:
                    self._scan_now = True  # maybe more than it read: the next cycle scans on
                named = set(picked[name]) | self.named.ours(name)
                fresh = [doc["_id"] for doc in found if doc["_id"] not in named]
                picked[name] += fresh
                room -= len(fresh)
        return picked

    async def _read_own(self, batch: Batch, own: dict[str, list[Any]]) -> None:
        for name, ids in own.items():
            if not ids:
                continue
            with self.timed("read"):
                docs, held = await read_unclaimed(self.db[name], ids)
            read = {doc["_id"] for doc in docs}
            # Not read: published already, or a claim holds it (another relay's background
            # pass), and then it is tried again later.
            self.named.landed(name, [i for i in ids if i not in read])
            self.named.add_own(name, held)
            batch.own += [(name, doc) for doc in docs]

    async def _claim(self, batch: Batch, picked: dict[str, list[Any]]) -> None:
        for name, ids in picked.items():
            if not ids:
                continue
            with self.timed("claim"):
                docs, held = await claim(self.db[name], ids, token=batch.token, lease=self.lease)
            # Another claim's (maybe this relay's other cycle): try again later.
            self.named.add_to_claim(name, held)
            batch.claimed += [(name, doc) for doc in docs]
