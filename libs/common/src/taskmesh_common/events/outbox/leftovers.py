"""The relay's background pass: pending documents their writer did not publish in time.

Each pass reads up to ``scan_limit`` pending documents of every collection through the
pending index (:mod:`.pending`) and names for a claim (:class:`~.named.Named`) those whose
oldest entry is older than ``grace`` and that no live claim holds: a process that died
between its write and the publish, or whose broker is away. The documents this process
wrote itself are left to its own cycles. It also sets the ``outbox_pending`` and
``outbox_oldest_age_seconds`` gauges.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase

from taskmesh_common.events.envelope import OUTBOX_FIELD
from taskmesh_common.events.metrics import OUTBOX_OLDEST_AGE, OUTBOX_PENDING
from taskmesh_common.events.outbox.claims import CLAIM_FIELD, claim_holds
from taskmesh_common.events.outbox.named import Named
from taskmesh_common.events.outbox.pending import (
    Document,
    entry_time,
    find_pending,
    oldest_entry,
)
from taskmesh_common.events.outbox.picking import Timed

__all__ = ["LeftoverScan"]


class LeftoverScan:
    """One relay's background pass over ``collections`` (see the module docstring)."""

    def __init__(
        self,
        db: AsyncDatabase[Document],
        collections: Sequence[str],
        named: Named,
        *,
        service: str,
        grace: timedelta,
        scan_limit: int,
        timed: Timed,
    ) -> None:
        self.db = db
        self.collections = list(collections)
        self.named = named
        self.service = service
        self.grace = grace
        self.scan_limit = scan_limit
        self.timed = timed

    def _left_over(self, doc: Document, now: datetime) -> bool:
        """Whether ``doc``'s oldest entry is older than ``grace``: its writer did not
        publish it in time (an entry without a readable time counts as old)."""
        times = [entry_time(entry) for entry in doc.get(OUTBOX_FIELD) or []]
        return any(when is None or now - when >= self.grace for when in times)

    async def run(self) -> int:
        """One pass; returns how many pending documents it named for a claim."""
        named, count, oldest = 0, 0, None
        with self.timed("background"):
            for name in self.collections:
                fields = {f"{OUTBOX_FIELD}.time": 1, CLAIM_FIELD: 1}
                docs = await find_pending(self.db[name], limit=self.scan_limit, projection=fields)
                now = datetime.now(UTC)
                ours = self.named.ours(name)
                for doc in docs:
                    if (
                        doc["_id"] not in ours
                        and not claim_holds(doc, now)
                        and self._left_over(doc, now)
                        and self.named.add_to_claim(name, [doc["_id"]])
                    ):
                        named += 1
                n, first = oldest_entry(docs)
                count += n
                if first is not None and (oldest is None or first < oldest):
                    oldest = first
        OUTBOX_PENDING.labels(self.service).set(count)
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
        OUTBOX_OLDEST_AGE.labels(self.service).set(max(0.0, age))
        return named
