"""The outbox relay: publishes the events producers left in their documents' ``_outbox``.

Several replicas run one each. Documents are spread over ``partitions`` by a hash of their
id; a relay publishes a partition's pending entries only while it holds that partition's
lease (see :mod:`.leases`: exclusive on FerretDB too, where conditional updates are not
atomic). Under the lease it reads the documents, publishes their entries in order with
publisher confirms, and only then pulls the confirmed entries (per document under its
producers' lock, where ``locks`` are given: see :mod:`.settle`), before releasing the lease.
A relay that dies leaves its leases to expire and another takes the partitions over; an
event may then go out twice, which consumers absorb by deduplicating on its id.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
import zlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from taskmesh_common.events.envelope import OUTBOX_FIELD
from taskmesh_common.events.leases import Leases
from taskmesh_common.events.metrics import EVENTS_UNROUTABLE, OUTBOX_OLDEST_AGE, OUTBOX_PENDING
from taskmesh_common.events.publisher import EventPublisher, is_unroutable
from taskmesh_common.events.settle import Published, settle_batched, settle_locked
from taskmesh_common.locks import DocumentLocks

__all__ = ["LEASES_COLLECTION", "PENDING", "ClaimedDocument", "OutboxRelay"]

logger = logging.getLogger("taskmesh.events.relay")

LEASES_COLLECTION = "outbox_leases"
_MAX_BACKOFF = 5.0
_METRICS_EVERY = 10.0
_METRICS_SCAN_LIMIT = 1000
PENDING: dict[str, Any] = {f"{OUTBOX_FIELD}.0": {"$exists": True}}

Document = dict[str, Any]
ClaimedDocument = tuple[str, Document]  # (collection, document as read under the lease)


class OutboxRelay:
    """Publishes pending outbox entries of ``collections`` in ``db``; see the module docstring.

    ``start()`` runs it in the background, ``kick()`` wakes it after a write (otherwise it
    polls every ``poll_interval``), ``await stop()`` ends it.

    An event the broker returns as unroutable (no queue bound for its type) has nobody to
    go to: with ``drop_unroutable`` (the default) it is counted in
    ``events_unroutable_total``, logged and dropped, as a non-mandatory publish would be,
    instead of blocking the outbox until some consumer binds. Consumers' queues are
    durable, so this only concerns types no consumer has ever subscribed to.

    ``locks`` (collection name -> :class:`~taskmesh_common.locks.DocumentLocks`) makes the
    relay's writes to those collections' documents one per document, each under the lock
    its producers write under, ``lock_parallelism`` at a time: needed on FerretDB, whose
    updates are not atomic (see :mod:`.settle`). Without, one batched write (MongoDB).
    """

    def __init__(
        self,
        db: AsyncDatabase[Document],
        collections: Sequence[str],
        publisher: EventPublisher,
        *,
        service: str,
        lease_seconds: float = 15,
        batch_size: int = 200,
        poll_interval: float = 0.25,
        partitions: int = 16,
        drop_unroutable: bool = True,
        locks: Mapping[str, DocumentLocks] | None = None,
        lock_parallelism: int = 16,
    ) -> None:
        self.db = db
        self.collections = list(collections)
        self.publisher = publisher
        self.service = service
        self.lease = timedelta(seconds=lease_seconds)
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.partitions = partitions
        self.drop_unroutable = drop_unroutable
        self.locks = dict(locks or {})
        self.lock_parallelism = lock_parallelism
        self.owner = f"{service}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.leases = Leases(db[LEASES_COLLECTION], owner=self.owner, duration=self.lease)
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._metrics_at = float("-inf")

    def start(self) -> None:
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self.service}")

    def kick(self) -> None:
        """Publish soon: call right after a write that added outbox entries."""
        self._wake.set()

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(task, timeout=self.publisher.confirm_timeout + 5)
            except TimeoutError:
                pass  # wait_for cancelled it; its leases expire

    async def _run(self) -> None:
        delay = 0.2
        while not self._stopping.is_set():
            try:
                if not self.publisher.started:
                    # No leases while the broker is away: other replicas may still reach it.
                    await self.publisher.start(timeout=min(5.0, self.lease.total_seconds() / 2))
                claimed = await self.run_once()
                await self._housekeeping()
            except Exception as exc:
                logger.warning(
                    "outbox relay cycle failed, backing off",
                    extra={"error": f"{type(exc).__name__}: {exc}", "delay": delay},
                )
                await self._sleep(delay)
                delay = min(delay * 2, _MAX_BACKOFF)
                continue
            delay = 0.2
            if claimed < self.batch_size:
                await self._sleep(self.poll_interval)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        except TimeoutError:
            pass
        self._wake.clear()

    def partition_key(self, collection: str, doc_id: Any) -> str:
        partition = zlib.crc32(f"{collection}|{doc_id!r}".encode()) % self.partitions
        return f"{collection}|{partition}"

    async def claim(self) -> tuple[list[ClaimedDocument], dict[str, int]]:
        """Lease the partitions of up to ``batch_size`` pending documents and read them.

        Returns the documents read under the leases, and the leases (to release).
        """
        candidates: list[tuple[str, Any]] = []
        for name in self.collections:
            room = self.batch_size - len(candidates)
            if room <= 0:
                break
            async for doc in self.db[name].find(PENDING, {"_id": 1}, limit=room):
                candidates.append((name, doc["_id"]))
        if not candidates:
            return [], {}
        held = await self.leases.acquire(self.partition_key(n, i) for n, i in candidates)
        mine = [(n, i) for n, i in candidates if self.partition_key(n, i) in held]
        # Read after the lease is ours, so no entry confirmed by the previous holder is missed.
        docs = await asyncio.gather(*(self.db[n].find_one({"_id": i, **PENDING}) for n, i in mine))
        claimed = [(n, d) for (n, _), d in zip(mine, docs, strict=True) if d is not None]
        return claimed, held

    async def run_once(self) -> int:
        """Claim, publish and settle one batch; returns how many documents it claimed."""
        claimed, held = await self.claim()
        if not held:
            return 0
        try:
            outcomes = await asyncio.gather(*(self._publish_document(d) for _, d in claimed))
            failure = next((error for _, error in outcomes if error is not None), None)
            for name in self.collections:
                done = [
                    (doc, published)
                    for (coll, doc), (published, _) in zip(claimed, outcomes, strict=True)
                    if coll == name and published
                ]
                await self._settle(name, done)
        finally:
            # Released only after settling: the next holder reads what is really left.
            await self.leases.release(held)
        if failure is not None:
            raise failure  # the loop backs off and retries what is left
        return len(claimed)

    async def _publish_document(
        self, doc: Mapping[str, Any]
    ) -> tuple[list[Document], BaseException | None]:
        """Publish a document's entries in order, stopping at the first that fails.

        Returns the entries that are out and the failure, if any.
        """
        done: list[Document] = []
        for entry in doc.get(OUTBOX_FIELD) or []:
            try:
                await self.publisher.publish(entry)
            except Exception as exc:
                if not (self.drop_unroutable and is_unroutable(exc)):
                    return done, exc
                EVENTS_UNROUTABLE.labels(self.service, str(entry.get("type"))).inc()
                logger.warning(
                    "event dropped: no queue is bound for its type",
                    extra={"event_id": entry.get("id"), "event_type": entry.get("type")},
                )
            done.append(entry)
        return done, None

    async def _settle(self, name: str, done: list[Published]) -> None:
        """Pull the published entries from their documents; drop emptied tombstones."""
        if not done:
            return
        locks = self.locks.get(name)
        if locks is None:
            await settle_batched(self.db[name], done)
        else:
            await settle_locked(self.db[name], done, locks, parallel=self.lock_parallelism)

    async def _housekeeping(self) -> None:
        await self._maybe_update_metrics()

    async def _maybe_update_metrics(self) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() - self._metrics_at < _METRICS_EVERY:
            return
        self._metrics_at = loop.time()
        pending, oldest = await self.pending_summary()
        OUTBOX_PENDING.labels(self.service).set(pending)
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
        OUTBOX_OLDEST_AGE.labels(self.service).set(max(0.0, age))

    async def pending_summary(self) -> tuple[int, datetime | None]:
        """Pending entries and the oldest one's time (from up to 1,000 documents each)."""
        count, oldest = 0, None
        for name in self.collections:
            cursor = self.db[name].find(
                PENDING,
                {f"{OUTBOX_FIELD}.time": 1},
                limit=_METRICS_SCAN_LIMIT,
            )
            async for doc in cursor:
                for entry in doc.get(OUTBOX_FIELD) or []:
                    count += 1
                    try:
                        when = datetime.fromisoformat(str(entry["time"]))
                    except (KeyError, ValueError):
                        continue
                    if oldest is None or when < oldest:
                        oldest = when
        return count, oldest
